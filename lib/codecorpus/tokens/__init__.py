"""Packing token streams into fixed-length training sequences, in numpy and Arrow only: no Spark,
so the tokens stage and the GPU stage share it."""
