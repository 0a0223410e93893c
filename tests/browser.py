"Headless Chromium for browser tests: Debian's chromium driven by Playwright (its own browser download cannot work here)."
import shutil, subprocess, os, contextlib
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]

def ensure_chromium() -> str:
    "Install Debian's chromium if it is missing (as root); return its path."
    if not Path(CHROMIUM).exists():
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=True, env=env, capture_output=True)
    return CHROMIUM

@contextlib.contextmanager
def browser():
    "A Playwright Browser on Debian's chromium."
    from playwright.sync_api import sync_playwright
    ensure_chromium()
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS[1:], headless=True)
        try: yield b
        finally: b.close()
