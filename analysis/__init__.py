"""Technical analysis over Binance klines: the candles (``candles``), TA-Lib's indicators in a
typed layer (``indicators``), crosses and levels (``signals``), the ``/ta`` read-out and its
words (``readout``, ``overview``, ``scoring``, ``words``) and the errors (``errors``). No
aiogram here: texts are translated by the ``gettext`` the caller passes in."""
