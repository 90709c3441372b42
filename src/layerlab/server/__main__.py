"""``python -m layerlab.server``: the ``serve`` command on its own (same options as ``layerlab serve``)."""
from ..cli_support import LabTyper
from .cli import serve_command

app = LabTyper(help="Serve the layerlab web UI and API.", no_args_is_help=False)
app.command()(serve_command)

if __name__ == "__main__":
    app()
