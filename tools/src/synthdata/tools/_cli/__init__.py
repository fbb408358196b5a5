"""The command-line builder shared by every ``synth-*`` command (see :mod:`.builder`, :mod:`.vocabulary`)."""

from synthdata.tools._cli.builder import Command
from synthdata.tools._cli.vocabulary import flag_of

__all__ = ["Command", "flag_of"]
