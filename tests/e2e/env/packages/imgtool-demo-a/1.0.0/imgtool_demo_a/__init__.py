"""imgtool-demo-a: a tiny package for imgtool's end-to-end tests."""

__version__ = "1.0.0"


def greet(name: str = "world") -> str:
    return f"hello {name} from imgtool-demo-a {__version__}"
