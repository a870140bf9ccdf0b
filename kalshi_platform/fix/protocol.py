"""Tags, enums and value formats of Kalshi's FIX dictionary (docs/trading-api.md §4.2,
docs/fix.md).

Prices on the wire: integer cents 1–99 by default, fixed-point dollars (``0.5600``, sub-penny
allowed) when the session logged on with ``UseDollars`` (21005=Y). Quantities: contracts
(decimal, Kalshi: "Fractional quantities supported"; the core counts centi-contracts).
Inside the gateway prices are the core's integer micro-dollars, counts centi-contracts
(kalshi_platform/fixedpoint.py). Every parse error is a :class:`FixValueError` whose message
is one line naming the tag.
"""

from __future__ import annotations

import datetime as _dt
import re

import simplefix

BEGIN_STRING = "FIXT.1.1"
APPL_VER_FIX50SP2 = "9"  # DefaultApplVerID 1137
TARGET_NR = "KalshiNR"   # order entry, no retransmission (port 8228 at Kalshi)
TARGET_RT = "KalshiRT"   # order entry with retransmission (port 8230 at Kalshi)
SESSION_TARGETS = (TARGET_NR, TARGET_RT)

# -- header / session tags ------------------------------------------------------------------
BEGIN_SEQ_NO, END_SEQ_NO = 7, 16
MSG_SEQ_NUM, MSG_TYPE, NEW_SEQ_NO = 34, 35, 36
POSS_DUP, SENDER, SENDING_TIME, TARGET = 43, 49, 52, 56
REF_SEQ_NUM, TEXT = 45, 58
RAW_DATA_LENGTH, RAW_DATA = 95, 96
ENCRYPT_METHOD, HEARTBT_INT, TEST_REQ_ID = 98, 108, 112
ORIG_SENDING_TIME, GAP_FILL, RESET_SEQ_NUM = 122, 123, 141
REF_TAG_ID, REF_MSG_TYPE, SESSION_REJECT_REASON = 371, 372, 373
BUSINESS_REJECT_REF_ID, BUSINESS_REJECT_REASON = 379, 380
DEFAULT_APPL_VER_ID = 1137
CANCEL_ORDERS_ON_DISCONNECT = 8013
USE_DOLLARS = 21005

# -- application tags -----------------------------------------------------------------------
AVG_PX, CL_ORD_ID, CUM_QTY, EXEC_ID, EXEC_INST = 6, 11, 14, 17, 18
LAST_PX, LAST_QTY, ORDER_ID, ORDER_QTY, ORD_STATUS, ORD_TYPE = 31, 32, 37, 38, 39, 40
ORIG_CL_ORD_ID, PRICE, SIDE, SYMBOL, TIME_IN_FORCE = 41, 44, 54, 55, 59
TRANSACT_TIME, ORD_REJ_REASON, EXPIRE_TIME = 60, 103, 126
CXL_REJ_REASON, NO_MISC_FEES, MISC_FEE_AMT, MISC_FEE_TYPE = 102, 136, 137, 139
EXEC_TYPE, LEAVES_QTY, CXL_REJ_RESPONSE_TO = 150, 151, 434
SECONDARY_CL_ORD_ID = 526
MASS_CANCEL_REQUEST_TYPE, MASS_CANCEL_RESPONSE, MASS_CANCEL_REJECT_REASON = 530, 531, 532
TOTAL_AFFECTED_ORDERS = 533
TRD_MATCH_ID, AGGRESSOR_INDICATOR = 880, 1057
SELF_TRADE_PREVENTION_TYPE = 2964
CANCEL_ORDER_ON_PAUSE, MAX_EXECUTION_COST = 21006, 21009

# -- message types --------------------------------------------------------------------------
HEARTBEAT, TEST_REQUEST, RESEND_REQUEST, REJECT = "0", "1", "2", "3"
SEQUENCE_RESET, LOGOUT, LOGON = "4", "5", "A"
EXECUTION_REPORT, ORDER_CANCEL_REJECT = "8", "9"
NEW_ORDER_SINGLE, ORDER_CANCEL_REQUEST, ORDER_CANCEL_REPLACE = "D", "F", "G"
MASS_CANCEL_REQUEST, MASS_CANCEL_REPORT, BUSINESS_REJECT = "q", "r", "j"
ADMIN_TYPES = frozenset({HEARTBEAT, TEST_REQUEST, RESEND_REQUEST, REJECT, SEQUENCE_RESET,
                         LOGOUT, LOGON})

# -- enums ----------------------------------------------------------------------------------
SIDE_BUY_YES, SIDE_SELL_YES = "1", "2"  # dictionary: BUY_YES / SELL_NO (an ask on the YES book)
ORD_TYPE_LIMIT = "2"
EXEC_INST_POST_ONLY = "6"
TIF_DAY, TIF_GTC, TIF_IOC, TIF_FOK, TIF_GTD = "0", "1", "3", "4", "6"
STP = {"1": "taker_at_cross", "2": "maker"}

EXEC_NEW, EXEC_CANCELED, EXEC_REPLACED, EXEC_REJECTED, EXEC_TRADE = "0", "4", "5", "8", "F"
ORD_NEW, ORD_PARTIAL, ORD_FILLED, ORD_CANCELED, ORD_REJECTED = "0", "1", "2", "4", "8"

# OrdRejReason 103 (docs/trading-api.md §4.2 names 2, 3, 6, 8; 1 and 99 are FIX's own)
REJ_UNKNOWN_SYMBOL, REJ_EXCHANGE_CLOSED, REJ_EXCEEDS_LIMIT = "1", "2", "3"
REJ_DUPLICATE, REJ_OTHER = "6", "99"
# CxlRejReason 102: 0 too late, 1 unknown order, 18 INVALID_PRICE_INCREMENT (Kalshi), 99 other
CXL_TOO_LATE, CXL_UNKNOWN, CXL_PRICE_INCREMENT, CXL_OTHER = "0", "1", "18", "99"
CXL_RESPONSE_CANCEL, CXL_RESPONSE_REPLACE = "1", "2"
# BusinessRejectReason 380: 3 unsupported message type, 8 RATE_LIMIT_EXCEEDED (Kalshi)
BIZ_UNSUPPORTED_TYPE, BIZ_RATE_LIMIT = "3", "8"
# SessionRejectReason 373 (FIX): 1 required tag missing, 5 value incorrect, 6 data format,
# 9 CompID problem, 11 invalid MsgType
SR_MISSING, SR_BAD_VALUE, SR_FORMAT, SR_COMPID, SR_BAD_MSGTYPE = "1", "5", "6", "9", "11"
# MassCancelRequestType 530: 1 by security (Symbol), 7 all orders (of this session here)
MASS_BY_SYMBOL, MASS_ALL = "1", "7"
MASS_REJECTED = "0"

_CLORDID_RE = re.compile(r"^[\-\w:+=/]{1,64}$")
MICRO = 1_000_000  # micro-dollars per dollar


class FixValueError(ValueError):
    """A field is missing or malformed: ``tag`` names it, ``reason`` is a SessionRejectReason;
    the message is one line."""

    def __init__(self, tag: int, message: str, reason: str = SR_BAD_VALUE) -> None:
        super().__init__(message)
        self.tag = tag
        self.reason = reason


def text(msg: simplefix.FixMessage, tag: int, required: bool = False) -> str | None:
    """Tag ``tag`` of ``msg`` as str (``None`` when absent and not required).

    Raises :class:`FixValueError` (SessionRejectReason 1) when required and absent."""
    v = msg.get(tag)
    if v is None:
        if required:
            raise FixValueError(tag, f"required tag {tag} missing", SR_MISSING)
        return None
    return v.decode("utf-8", "replace")


def integer(msg: simplefix.FixMessage, tag: int, required: bool = False) -> int | None:
    """Tag ``tag`` as an int; raises :class:`FixValueError` when malformed (or required and
    absent)."""
    v = text(msg, tag, required)
    if v is None:
        return None
    try:
        return int(v)
    except ValueError:
        raise FixValueError(tag, f"tag {tag} is not an integer: {v!r}", SR_FORMAT) from None


def flag(msg: simplefix.FixMessage, tag: int) -> bool:
    """A Boolean tag (``Y``/``N``; absent = N)."""
    return text(msg, tag) == "Y"


def _decimal_units(tag: int, v: str, scale: int) -> int:
    """``v`` (a non-negative decimal string) × ``scale`` exactly; error when not exact."""
    m = re.fullmatch(r"(\d+)(?:\.(\d*))?", v)
    if not m:
        raise FixValueError(tag, f"tag {tag} is not a decimal: {v!r}", SR_FORMAT)
    whole, frac = m.group(1), (m.group(2) or "").rstrip("0")
    digits = len(str(scale)) - 1
    if len(frac) > digits:
        raise FixValueError(tag, f"tag {tag} has too many decimals: {v!r}")
    return int(whole) * scale + (int(frac.ljust(digits, "0")) if frac else 0)


def parse_price(msg: simplefix.FixMessage, tag: int, use_dollars: bool,
                required: bool = True) -> int | None:
    """A price tag → micro-dollars: integer cents 1–99, or with ``UseDollars`` fixed-point
    dollars (up to 6 decimals, the core's tick grid decides what is valid)."""
    v = text(msg, tag, required)
    if v is None:
        return None
    if use_dollars:
        return _decimal_units(tag, v, MICRO)
    if not v.isdigit():
        raise FixValueError(tag, f"tag {tag} must be integer cents 1-99: {v!r}", SR_FORMAT)
    cents = int(v)
    if not 1 <= cents <= 99:
        raise FixValueError(tag, f"tag {tag} must be integer cents 1-99: {v!r}")
    return cents * 10_000


def format_price(micro: int, use_dollars: bool) -> str:
    """Micro-dollars → the session's price format (cents as an integer when whole, else a
    decimal number of cents; dollars with 4 decimals, 6 when sub-$0.0001)."""
    if use_dollars:
        s = f"{micro // MICRO}.{micro % MICRO:06d}"
        return s[:-2] if s.endswith("00") else s
    cents, rest = divmod(micro, 10_000)
    return str(cents) if not rest else f"{cents}.{rest:04d}".rstrip("0")


def parse_qty(msg: simplefix.FixMessage, tag: int, required: bool = True) -> int | None:
    """A quantity tag (contracts, up to 2 decimals) → centi-contracts, > 0."""
    v = text(msg, tag, required)
    if v is None:
        return None
    q = _decimal_units(tag, v, 100)
    if q <= 0:
        raise FixValueError(tag, f"tag {tag} must be > 0: {v!r}")
    return q


def format_qty(centi: int) -> str:
    """Centi-contracts → contracts (integer when whole, else 2 decimals)."""
    whole, rest = divmod(centi, 100)
    return str(whole) if not rest else f"{whole}.{rest:02d}"


def format_money(units: int, scale: int) -> str:
    """Money in ``scale`` units per dollar → dollars with 4 decimals (rounded toward zero)."""
    q = units * 10_000 // scale
    return f"{q // 10_000}.{q % 10_000:04d}"


def clordid(msg: simplefix.FixMessage, tag: int = CL_ORD_ID) -> str:
    """A ClOrdID (≤ 64 of ``[-\\w:+=/]``, Kalshi's pattern); raises :class:`FixValueError`."""
    v = text(msg, tag, True)
    if not _CLORDID_RE.match(v):
        raise FixValueError(tag, f"tag {tag} must be 1-64 characters of [-A-Za-z0-9_:+=/]")
    return v


def parse_utc(tag: int, v: str) -> int:
    """A UTCTimestamp ``YYYYMMDD-HH:MM:SS[.sss…]`` → UTC nanoseconds."""
    try:
        base, _, frac = v.partition(".")
        t = _dt.datetime.strptime(base, "%Y%m%d-%H:%M:%S").replace(tzinfo=_dt.timezone.utc)
    except ValueError:
        raise FixValueError(tag, f"tag {tag} is not a UTCTimestamp: {v!r}", SR_FORMAT) from None
    if frac and not frac.isdigit():
        raise FixValueError(tag, f"tag {tag} is not a UTCTimestamp: {v!r}", SR_FORMAT)
    return int(t.timestamp()) * 1_000_000_000 + int((frac or "0").ljust(9, "0")[:9])


def utc_timestamp(ns: int) -> str:
    """UTC nanoseconds → ``YYYYMMDD-HH:MM:SS.sss`` (FIX UTCTimestamp, milliseconds)."""
    t = _dt.datetime.fromtimestamp(ns // 1_000_000_000, _dt.timezone.utc)
    return t.strftime("%Y%m%d-%H:%M:%S") + f".{ns // 1_000_000 % 1000:03d}"


def new_message(msg_type: str) -> simplefix.FixMessage:
    """A message with BeginString and MsgType set (the session adds the rest of the header)."""
    m = simplefix.FixMessage()
    m.append_pair(8, BEGIN_STRING, header=True)
    m.append_pair(MSG_TYPE, msg_type, header=True)
    return m


def new_parser() -> simplefix.FixParser:
    """A stream parser for one connection (RawData 95/96 is a length-prefixed data field)."""
    return simplefix.FixParser()
