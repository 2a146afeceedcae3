"""The report notebooks. In the repository they stay here, at ``notebooks/``; the wheel carries
them as ``vhdiag/notebooks`` (pyproject.toml maps this folder with setuptools' package-dir), so
``vhdiag report`` works from a plain ``pip install``."""
