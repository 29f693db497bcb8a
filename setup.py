"""Build of the edgebp package: the cffi extension (edgebp/_build.py) and the sources an installed package
needs to build, emulate and benchmark firmware. build_py copies csrc/, firmware/ (without build outputs) and
tools/bench/ into edgebp/_src/ of the wheel; edgebp/paths.py finds them there (a checkout uses its own).
The extension uses only the stable ABI (cffi's default), so the wheel is tagged abi3."""
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
BUNDLE = [("csrc", "csrc"), ("firmware", "firmware"), ("tools/bench", "tools/bench")]
IGNORE = shutil.ignore_patterns("build", "__pycache__", "*.pyc", "*.o", "*.elf", "*.bin", "*.hex", "*.map",
                                "*.su", "*.ci", "*.a", "*.so", "bench_step", ".*")


class build_py_with_sources(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return          # an editable install runs from the checkout, which has the folders itself
        for src, dst in BUNDLE:
            target = Path(self.build_lib) / "edgebp" / "_src" / dst
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(ROOT / src, target, ignore=IGNORE)


setup(cffi_modules=["edgebp/_build.py:ffibuilder"],
      cmdclass={"build_py": build_py_with_sources},
      options={"bdist_wheel": {"py_limited_api": "cp39"}})
