"""`Authorization: Bearer <token>`, read the same way by the API and the handshake.

RFC 6750 §2.1 with RFC 9110's whitespace rules: the scheme is matched without
regard to case, scheme and token are separated by one or more spaces or tabs,
and spaces or tabs around the value are ignored. The token itself holds none.
"""

import re

BLANKS = " \t"
# The first blank: where the scheme ends. A plain search, linear in the value,
# as every step here is: a pattern that also matched the blanks around the
# token backtracked over a run of them, quadratic in its length (a 16 KiB
# header of spaces held the event loop for a second).
_BLANK = re.compile(r"[ \t]")


class MalformedBearer(ValueError):
    """A Bearer header without exactly one token; the message is a log reason.

    Reasons name the scheme last: the log filter redacts whatever follows
    `Bearer `, which would garble a reason worded "Bearer without ...".
    """


def bearer_token(value: str) -> str | None:
    """The token of a `Bearer` header value; None when the scheme is another."""
    value = value.strip(BLANKS)
    blank = _BLANK.search(value)
    if blank is None:
        scheme, rest = value, ""
    else:
        scheme, rest = value[: blank.start()], value[blank.start() :].lstrip(BLANKS)
    if not (scheme.isascii() and scheme.lower() == "bearer"):
        return None
    if not rest:
        raise MalformedBearer("no token after Bearer")
    if " " in rest or "\t" in rest:
        raise MalformedBearer("more than one value after Bearer")
    return rest
