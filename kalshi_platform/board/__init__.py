"""The live market board (``kalshi-platform board URL``, issue 12 §5): a feed subscriber that
shows one row per market.

* :mod:`.model`: :class:`~.model.BoardModel`, per-market rows updated from
  :class:`~kalshi_platform.feed.subscriber.Item` s, rates from counts over a window of
  samples taken with a clock the caller passes in. Pure: no I/O, no rich, no clock of its own.
* :mod:`.view`: the board as a rich renderable (header and table) built from the model,
  fitted to a width without ever cutting a ticker. No I/O either.

The command itself (subscribing, the refresh loop, exit codes) is
:mod:`kalshi_platform.tools.board`.
"""
