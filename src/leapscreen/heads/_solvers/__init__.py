"""The solver layer of the heads (private): batched path solvers, LAPACK helpers, ridge spectra.

* :mod:`._lapack` - LAPACK routines through ctypes, loaded and checked on first use;
* :mod:`._linalg` - batched gathers, solves and products on a few single-threaded BLAS threads;
* :mod:`._torch` - the same gathers and solves on a torch device (torch imported on use only);
* :mod:`.path` - the active-set path solver of many LASSO / elastic-net problems at once;
* :mod:`.cv_path` - PS-LASSO's fold problems per missingness group, solved and scored on the path;
* :mod:`.spectral` - ridge regression for every alpha from one eigendecomposition.

Importing this package loads no LAPACK routine, probes nothing and does not import torch.
"""
