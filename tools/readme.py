"""Write README.md from nbs/index.ipynb (nbdev-readme needs Quarto, which these machines lack).

Markdown cells are copied, code cells become ```python blocks with their text outputs; `#|` directives are dropped
and `#| hide` cells skipped. `python tools/readme.py --check` exits 1 if README.md is out of date."""
import json, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

def render(nb_path=ROOT/"nbs"/"index.ipynb") -> str:
    nb = json.loads(Path(nb_path).read_text())
    parts = []
    for c in nb["cells"]:
        src = "".join(c["source"])
        lines = src.splitlines()
        if any(l.strip().replace(" ", "") in ("#|hide", "#|exporti") for l in lines): continue
        if c["cell_type"] == "markdown":
            parts.append(src.strip())
            continue
        code = "\n".join(l for l in lines if not l.startswith("#|")).strip()
        if code: parts.append(f"```python\n{code}\n```")
        outs = []
        for o in c.get("outputs", []):
            if o.get("output_type") == "stream": outs.append("".join(o["text"]))
            elif "text/markdown" in o.get("data", {}): parts.append("".join(o["data"]["text/markdown"]).strip()); continue
            elif "text/plain" in o.get("data", {}): outs.append("".join(o["data"]["text/plain"]))
        if outs: parts.append("```\n" + "".join(outs).strip("\n") + "\n```")
    return "<!-- generated from nbs/index.ipynb by tools/readme.py; edit the notebook -->\n\n" + "\n\n".join(parts) + "\n"

if __name__ == "__main__":
    text = render()
    if "--check" in sys.argv:
        ok = (ROOT/"README.md").exists() and (ROOT/"README.md").read_text() == text
        print("README.md is in sync with nbs/index.ipynb" if ok else "README.md is out of date: run python tools/readme.py")
        sys.exit(0 if ok else 1)
    (ROOT/"README.md").write_text(text)
    print("wrote README.md")
