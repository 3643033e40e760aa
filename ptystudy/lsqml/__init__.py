"""Phase F: pty-chi's LSQML engine behind one adapter, run in a killable worker process."""
