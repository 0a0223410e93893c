"""Convert '# %%' percent scripts into notebooks (authoring aid; the notebooks are the source)."""
import sys, json, re, pathlib
def convert(src, dst):
    text = pathlib.Path(src).read_text()
    cells, cur, kind = [], [], None
    def flush():
        if kind is None: return
        body = "\n".join(cur).strip("\n")
        if kind == "markdown":
            body = "\n".join(l[2:] if l.startswith("# ") else (l[1:] if l.startswith("#") else l) for l in body.split("\n"))
        cells.append(dict(cell_type=kind, metadata={}, source=body.splitlines(True), **({"outputs": [], "execution_count": None} if kind == "code" else {})))
    for line in text.split("\n"):
        if line.startswith("# %%"):
            flush(); cur = []
            kind = "markdown" if "[markdown]" in line else "code"
        else:
            cur.append(line)
    flush()
    nb = dict(cells=cells, metadata=dict(kernelspec=dict(display_name="python3", language="python", name="python3")), nbformat=4, nbformat_minor=5)
    for i, c in enumerate(nb["cells"]): c["id"] = f"c{i:03d}"
    pathlib.Path(dst).write_text(json.dumps(nb, indent=1) + "\n")
if __name__ == "__main__":
    for a in sys.argv[1:]:
        src, dst = a.split(":")
        convert(src, dst)
