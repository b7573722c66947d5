"""The `backprop-viz` command: `backprop-viz serve [--host --port --workers]`."""

import argparse

import uvicorn


def main(argv=None):
    """Parse the command line and start uvicorn."""
    parser = argparse.ArgumentParser(prog="backprop-viz", description="backprop-viz: see every number of backprop.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="start the web app")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes; any worker answers any request (experiments are pure functions of their spec)",
    )
    args = parser.parse_args(argv)
    if args.command == "serve":
        uvicorn.run("app.main:app", host=args.host, port=args.port, workers=args.workers)


if __name__ == "__main__":
    main()
