"""How the command line fails: one line naming the problem and the fix, and an exit code.

Exit codes: 0 success, 1 an error (the message says what to do), 2 a usage error (argparse's
message), 130 interrupted by Ctrl-C (128 + SIGINT, as shells report it). ``--debug`` adds the
traceback; without it none is ever printed (:func:`mmslim.cli.main.main` catches everything).
"""

from __future__ import annotations

EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130


def describe_error(err: BaseException, debug: bool = False) -> str:
    """One line naming the problem and what to do about it."""
    # Our documented errors (DataError, CheckpointError, BitstreamError) are ValueErrors whose
    # message already says what to do.
    if isinstance(err, ValueError):
        return " ".join(str(err).split()) or type(err).__name__
    name = getattr(err, "filename", None)
    if isinstance(err, IsADirectoryError):
        return f"{name} is a folder; pass a file (e.g. one inside it)"
    if isinstance(err, NotADirectoryError):
        return f"{name}: a part of this path is a file, not a folder"
    if isinstance(err, FileNotFoundError):
        return f"{name} does not exist; check the path"
    if isinstance(err, PermissionError):
        return f"{name}: permission denied; choose a path you can read or write"
    if isinstance(err, MemoryError):
        return "out of memory; process fewer frames at a time (split the input) or free memory" + (
            "" if debug else " (--debug shows where)"
        )
    if isinstance(err, OSError):
        return f"{name or 'I/O'}: {err.strerror or err}"
    if isinstance(err, RuntimeError):  # e.g. torch, with a message meant for users
        return " ".join(str(err).split()[:60]) + ("" if debug else " (--debug for details)")
    hint = "" if debug else "; rerun with --debug for the traceback"
    return f"unexpected {type(err).__name__}: {' '.join(str(err).split())[:300]}{hint}"


def what_was_saved(args) -> str:
    """For Ctrl-C: what the interrupted command left on disk."""
    if args.command == "train":
        from mmslim.training.checkpoint import load_checkpoint
        from mmslim.training.fit import checkpoint_path

        ckpt = checkpoint_path(args.out, args.stage)
        if not ckpt.is_file():
            return "no epoch had finished, so nothing was saved"
        if ckpt.stat().st_mtime < getattr(args, "started", 0):
            return f"no epoch of this run had finished; {ckpt} is the previous run's, untouched"
        epoch = load_checkpoint(ckpt).get("epoch", "?")
        return (
            f"{ckpt} holds epoch {epoch} (saved whole at the end of every epoch); continue "
            "with the same command and --resume"
        )
    output = getattr(args, "output", None)
    return f"{output} was not written" if output is not None else "nothing was written"


__all__ = ["EXIT_ERROR", "EXIT_INTERRUPTED", "EXIT_USAGE", "describe_error", "what_was_saved"]
