"""The compiled part of the build: campfire's resampling kernels (campfire/tasks/_cresample.c) and the
redshift fit's χ² kernel (campfire/tasks/_czfit.c) in C.

Everything else is in pyproject.toml. The extension is optional: without a C compiler the
install still succeeds (setuptools prints the error and goes on) and the kernels fall back to
numba, then numpy (campfire.tasks._jit). ``pip install -e .`` builds it in place.
"""
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class BuildExt(build_ext):
    """numpy's headers found at build time; floating point exactly as written (the kernels must
    give the numba kernels' numbers bit for bit): no contraction into fused multiply-adds, which
    GCC does by default wherever the target has FMA (aarch64, or x86 built with -march=native)."""

    def build_extensions(self):
        import numpy

        strict = ["/fp:precise"] if self.compiler.compiler_type == "msvc" else ["-ffp-contract=off", "-fno-fast-math"]
        for ext in self.extensions:
            ext.include_dirs.append(numpy.get_include())
            ext.extra_compile_args.extend(strict)
        super().build_extensions()


setup(
    # _cargs.h: the argument checks both share (``depends``: rebuilt when it changes; MANIFEST.in: in the sdist)
    ext_modules=[Extension("campfire.tasks._cresample", ["campfire/tasks/_cresample.c"],
                           depends=["campfire/tasks/_cargs.h"], optional=True),
                 Extension("campfire.tasks._czfit", ["campfire/tasks/_czfit.c"],
                           depends=["campfire/tasks/_cargs.h"], optional=True)],
    cmdclass={"build_ext": BuildExt},
)
