"""The ``faceprint`` command.  Every command calls the Engine and adds only I/O;
``--json`` prints machine-readable output.  Exit codes: 0 ok, 1 unexpected error,
2 bad input (unreadable image, no face, bad argument), 3 model problem.

This module only assembles the command: the root app, the root-level commands in the order
``faceprint --help`` lists them, then the groups.  The commands live one module per group:

* :mod:`~faceprint.cli.core` -- detect, embed, verify, quality, models, calibrate, demo;
* :mod:`~faceprint.cli.gallery` -- enroll, identify and the ``subjects`` group;
* :mod:`~faceprint.cli.library` -- index, people (the photo library);
* :mod:`~faceprint.cli.checks` -- liveness, synthetic, train-pad, train-synthetic;
* :mod:`~faceprint.cli.eval` -- the ``eval`` group;
* :mod:`~faceprint.cli.service` -- serve and the ``keys`` group;
* :mod:`~faceprint.cli.encryption` -- the ``encryption`` group;

all on :mod:`~faceprint.cli._common` (consoles, engine, error mapping, JSON, progress, shared
options), which imports none of them.  No domain package imports this one."""

from __future__ import annotations

import sys

import typer

from faceprint.cli import checks, core, gallery, library, service
from faceprint.cli._common import err
from faceprint.cli.encryption import encryption_app
from faceprint.cli.eval import eval_app

__all__ = ["app", "main"]

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Offline face identity: detect, embed, verify at a stated false-match rate, evaluate.")

for _name, _command in (
    ("detect", core.detect),
    ("embed", core.embed),
    ("verify", core.verify),
    ("quality", core.quality),
    ("models", core.models),
    ("calibrate", core.calibrate),
    ("enroll", gallery.enroll),
    ("enroll-folder", gallery.enroll_folder),
    ("identify", gallery.identify),
    ("demo", core.demo),
    ("index", library.index),
    ("liveness", checks.liveness),
    ("synthetic", checks.synthetic),
    ("train-pad", checks.train_pad),
    ("train-synthetic", checks.train_synthetic),
    ("serve", service.serve),
):
    app.command(_name)(_command)
del _name, _command

app.add_typer(eval_app, name="eval")
app.add_typer(gallery.subjects_app, name="subjects")
app.add_typer(library.people_app, name="people")
app.add_typer(encryption_app, name="encryption")
app.add_typer(service.keys_app, name="keys")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
