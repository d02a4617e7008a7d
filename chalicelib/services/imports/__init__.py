"""Import of the core system's CSV files (SPEC §4): ``members.csv`` and ``obligations.csv``.

The file is streamed (:mod:`.rows`: physical lines read in chunks, decoded one by one, values
checked as they come, hostile text refused per row) and written in bounded batches, so memory does
not grow with the file. :mod:`.members` upserts members (never their password or security
fields); :mod:`.obligations` applies the cut-off rule (``domain/imports``) and closes the OPEN
obligations a full file does not list, one such import at a time (:mod:`.lock`); :mod:`.report`
is what staff read. Storage is the :class:`~chalicelib.services.repositories.ImportStorage` of
the unit of work (``uow.imports``); the bounds are in :mod:`.limits`.
"""

from chalicelib.domain.imports import ObligationRow, open_shard
from chalicelib.services.imports import limits
from chalicelib.services.imports.lock import LOCK_ID, ImportBusy
from chalicelib.services.imports.members import import_members
from chalicelib.services.imports.obligations import (
    ObligationImporter,
    import_obligations,
    parse_obligation,
)
from chalicelib.services.imports.report import CLOSING_TEXT, ImportReport, new_batch_id
from chalicelib.services.imports.rows import FileError, Row

__all__ = [
    "CLOSING_TEXT", "LOCK_ID", "FileError", "ImportBusy", "ImportReport", "ObligationImporter",
    "ObligationRow", "Row", "import_members", "import_obligations", "limits", "new_batch_id",
    "open_shard", "parse_obligation",
]
