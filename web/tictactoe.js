// Tic-tac-toe rules (placeholder until the app lands).
