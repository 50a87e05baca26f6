"""Erlang/OTP-style supervision on pykka, and the Lifeline host-facing layer."""
