"""`python -m layerlab` runs the CLI."""
from .cli import main

main()
