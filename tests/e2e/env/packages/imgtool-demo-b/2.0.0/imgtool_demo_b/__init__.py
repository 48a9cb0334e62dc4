"""imgtool-demo-b: depends on imgtool-demo-a, for dependency resolution in e2e tests."""

import imgtool_demo_a

__version__ = "2.0.0"


def describe() -> str:
    return f"imgtool-demo-b {__version__} using imgtool-demo-a {imgtool_demo_a.__version__}"
