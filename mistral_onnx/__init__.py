"""Take a Mistral-class causal LM to ONNX with a working KV cache, prove it, and run it fast with ONNX Runtime GenAI

Modules:

- `mistral_onnx.recipes`: A recipe is everything that decides what a quantized export keeps of the model's answers: bits, block size, symmetric or not, the rounding algorithm, which layers stay at higher precision, the accuracy level of the kernels, and what each execution provider refuses. `mistral-onnx export --recipe NAME`, `mistral-onnx recipes`, the export panel and the builder route all read these declarations; the measurements beside them come from `tools/int4_quality.py` on real trained weights.
- `mistral_onnx.session`: An exported folder loaded once in ONNX Runtime GenAI, with the one rule for how long a generator's cache must be, the prompt fed the way the folder's cache needs, and the adapters loaded beside the model. Generation, validation, benchmarks and serving all decode through it."""

__version__ = "0.1.0"
