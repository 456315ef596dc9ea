"""Packing token streams into fixed-length training sequences, in numpy and Arrow only (no
Spark): the tokens stage runs it inside executors; the GPU stage reads what it wrote through
`io.packed`."""
