from setuptools import setup

setup(cffi_modules=["edgebp/_build.py:ffibuilder"])
