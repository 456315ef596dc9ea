"""The GPU stage: train GPT-2-style models from scratch on a pipeline run's tokenizer/ and
tokens/ (`data.load_run`, `train.train`), compare their generations, score HumanEval.

Runs without Spark (and on the GPU machine, where there is none): this package never imports
pyspark, and torch/transformers are imported inside the functions that need them.
"""
