"""Domain errors: one line each, turned into `Error: ...` and an exit code by the CLI."""

import pickle


class TaskctlError(Exception):
    "Something went wrong that the user can fix; the message says how"

    exit_code = 1


class UsageError(TaskctlError):
    "The command line asked for something malformed"

    exit_code = 2


class ConfigError(TaskctlError):
    "config.toml is missing, unreadable or has an invalid setting"


class TaskModuleError(TaskctlError):
    "A task module listed in the config failed to import"


class UnknownTask(UsageError):
    "No registered task has that name"


class DatabaseError(TaskctlError):
    "The database file cannot be used (not SQLite, a directory, locked)"


class NoDatabase(DatabaseError):
    "Nothing has been written at the configured database yet"


class ForeignDatabase(DatabaseError):
    "The file is not a taskctl database (not SQLite, or another program's); it was left untouched"


class SchemaOutdated(DatabaseError):
    "An earlier release wrote the database; a command that only reads does not upgrade it"


class JobFailed(TaskctlError):
    "A job that the user waited for did not succeed"


class WaitTimeout(TaskctlError):
    "A job that the user waited for was still unfinished at the deadline"


class UnknownJob(UsageError):
    "No job has that id, or an id prefix matches more than one"


class NotPossible(TaskctlError):
    "The job is in a state where the command cannot act on it"


class StorageFailure(DatabaseError):
    "The consumer cannot write its record, and retrying will not change that"


class BadSignature(ValueError):
    "A message or result that does not carry this key's signature: forged, or queued without signing"


class NotPlainData(pickle.UnpicklingError):
    "A pickle that needs more than plain data to load, read without a signing key"
