"""The command-line builder shared by every ``synth-*`` command (see :mod:`.builder`, :mod:`.vocabulary`)."""

from synthdata.tools._cli.builder import Command, comma_floats
from synthdata.tools._cli.configfile import ConfigFileError, read_config_file
from synthdata.tools._cli.vocabulary import VOCABULARY, Flag, flag_of

__all__ = ["VOCABULARY", "Command", "ConfigFileError", "Flag", "comma_floats", "flag_of", "read_config_file"]
