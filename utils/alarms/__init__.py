"""Price alarms: the model (``alarm_model``), the command parser (``alarm_parser``), the store
(``alarm_store`` protocol and SQLite backend, ``alarm_store_redis``) and the engine
(``alarm_engine``) fed by the Binance client's streams. No aiogram, no ``bot``: firings leave
through a delivery protocol the bot's notifier implements."""
