"""What an operator's name may be: the `by` of a signed command, the key's owner in the config.

Kept apart from the settings' models so the command line checks it without loading the models.
"""

from __future__ import annotations

import re

OPERATOR_NAME_PATTERN = r"^[A-Za-z0-9_.@-]{1,64}$"


def operator_name(text: str) -> str:
    """`text` if it is a usable operator name, else ValueError saying what one is."""
    if re.fullmatch(OPERATOR_NAME_PATTERN, text) is None:
        raise ValueError(
            f"operator name {text!r}: 1 to 64 of letters, digits and _ . @ - (no spaces or /)"
        )
    return text
