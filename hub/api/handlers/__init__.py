"""Request handlers: parse, call one service, answer. No logic of their own."""
