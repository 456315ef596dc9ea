"""The GPU stage: train GPT-2-style models from scratch on a pipeline run's tokenizer/ and
tokens/ (`data.load_run`, `train.train`; `model.GPT` is our compact GPT-2), compare their
generations (`generate`; `fastgen` decodes with a static KV cache and CUDA graphs), score
HumanEval (`humaneval`, programs in `sandbox`). `export` and `pack` are what travels to the GPU
machine: a run's dataset/ packed again there by the tokens stage's packer; `profile` sorts a
training step's kernels.

Runs without Spark (and on the GPU machine, where there is none): this package never imports
pyspark, and torch/transformers are imported inside the functions that need them (`model` and
`fastgen` are torch modules: only those functions import them).
"""
