"""The textbook: every kernel of ``minicnn.kernels`` written again as plain Python loops over NumPy arrays.

Same file names, same function names, same arguments and results as the fast kernels, so you can read one
beside the other. These are slow on purpose: each line says one thing. The test suite uses them as the oracle
that the fast kernels must agree with, on random shapes, strides, paddings and odd sizes.

Output sizes and argument checks are not repeated here: both floors share ``minicnn.kernels.shapes``.
"""
