"""Errors raised for bad input: each names the game, population, time, state or action at fault."""


class GameError(ValueError):
    """A game definition (or what its functions returned) breaks the finite-game contract."""


class PolicyError(ValueError):
    """A policy profile does not fit its game (shape, sign, normalisation)."""


class UnknownGameError(KeyError):
    """No game is registered under the requested id."""

    def __str__(self):  # KeyError quotes its argument; keep the message readable
        return str(self.args[0]) if self.args else ""
