"""Admission: whether claimed bundles may be sent, and exactly what would be sent.

The steps a bundle passes before anything of it reaches the access point, in
their order: its submit file is chosen and screened on the raw text
(`bundle`), its names and special files are checked (`checks.check_names`),
one clean room reads every bundle of the batch (`condor.describe_many`), and
the rules run on the values that clean room returned (`checks.check`). The
pipeline and the tests call this same entry point.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import List, Mapping, Sequence, Union

from . import bundle as bundles
from . import checks, condor


@dataclass(frozen=True)
class Admitted:
    found: bundles.Bundle  # with `description`: the values to submit, as the clean room read them
    upload_bytes: int
    notes: List[str]  # for the report, whatever the outcome (e.g. $ENV names not passed on)


@dataclass(frozen=True)
class Refusal:
    reason: str  # in the user's words: the line at fault and what to do


def examine(
    folders: Sequence[Path], defaults: Mapping[str, str], allowlist: Sequence[str], max_upload_bytes: int
) -> List[Union[Admitted, Refusal]]:
    """One verdict per folder, in order."""
    verdicts: List[Union[Admitted, Refusal, None]] = []
    screened = []
    for folder in folders:
        try:
            root = os.path.realpath(folder)  # resolved once for all the checks: each resolution walks the whole path
            found = bundles.read(folder)
            checks.check_names(folder, root)
        except bundles.Rejected as exc:
            verdicts.append(Refusal(str(exc)))
            continue
        verdicts.append(None)
        screened.append((len(verdicts) - 1, found, root))
    described = condor.describe_many(
        [(found.text, found.folder) for _, found, _ in screened], checks.FILE_COMMANDS, defaults, allowlist
    )
    for (at, found, root), description in zip(screened, described):
        try:
            if isinstance(description, condor.Refused):
                raise description
            sent = checks.check(description, found.folder, found.text, found.submit_file.name, max_upload_bytes, root)
        except bundles.Rejected as exc:
            verdicts[at] = Refusal(str(exc))
            continue
        except condor.Refused as exc:
            verdicts[at] = Refusal(bundles.syntax_error(found.text, found.submit_file.name) or str(exc))
            continue
        notes = checks.env_notes(description, found.submit_file.name)
        verdicts[at] = Admitted(dataclasses.replace(found, description=description), sent, notes)
    return [v for v in verdicts if v is not None]
