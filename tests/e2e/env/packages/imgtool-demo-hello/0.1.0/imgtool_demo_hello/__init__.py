"""imgtool-demo-hello: importing it prints its name and version (tests grep for this line)."""

__version__ = "0.1.0"

print(f"imgtool-demo-hello {__version__}")


def main() -> None:
    print(f"imgtool-demo-hello {__version__} (console script)")
