// @ts-check
/**
 * Tic-tac-toe rules as pure functions: no DOM, no network, no clock. The browser app
 * uses them to validate every move it receives (both players and every watcher run the
 * same rules on the same ordered game log), and e2e/tictactoe.test.mjs tests them in Node.
 *
 * Wire format of the game messages (the `data` of `game.send` to `all`):
 *   {"move": 4}          put the mover's mark on cell 4 (cells 0…8, row by row)
 *   {"rematch": true}    start the next round once the current one is over
 *   {"text": "gg"}       a chat line in the game (a bare JSON string is one too)
 *
 * The game's owner (first seat) plays X in round 0; the opponent (second seat) plays O.
 * The marks swap every round, and X always moves first.
 *
 * @module tictactoe
 */

/** @typedef {'X' | 'O'} Mark */
/** @typedef {(Mark | null)[]} Board */

/** The eight winning lines, as cell indexes. */
export const LINES = Object.freeze([
  [0, 1, 2],
  [3, 4, 5],
  [6, 7, 8],
  [0, 3, 6],
  [1, 4, 7],
  [2, 5, 8],
  [0, 4, 8],
  [2, 4, 6],
]);

/** @returns {Board} an empty board */
export function emptyBoard() {
  return Array(9).fill(null);
}

/**
 * @param {Board} board
 * @param {Mark} mark
 */
function count(board, mark) {
  return board.filter((c) => c === mark).length;
}

/**
 * Whose turn it is on this board: X moves first, so X when both have as many marks.
 * @param {Board} board
 * @returns {Mark}
 */
export function turn(board) {
  return count(board, 'X') === count(board, 'O') ? 'X' : 'O';
}

/**
 * The winning mark and line, or null.
 * @param {Board} board
 * @returns {{mark: Mark, line: number[]} | null}
 */
export function winner(board) {
  for (const line of LINES) {
    const [a, b, c] = line;
    const m = board[a];
    if (m && m === board[b] && m === board[c]) return { mark: m, line: [...line] };
  }
  return null;
}

/**
 * @param {Board} board
 * @returns {boolean} every cell is taken
 */
export function isFull(board) {
  return board.every((c) => c !== null);
}

/**
 * The state of a board: still playing (and whose turn), won (by which mark, on which
 * line) or drawn.
 * @param {Board} board
 * @returns {{state: 'playing', turn: Mark} | {state: 'won', winner: Mark, line: number[]} | {state: 'draw'}}
 */
export function outcome(board) {
  const w = winner(board);
  if (w) return { state: 'won', winner: w.mark, line: w.line };
  if (isFull(board)) return { state: 'draw' };
  return { state: 'playing', turn: turn(board) };
}

/**
 * Why `mark` may not play `cell` on `board`, or null when the move is legal.
 * @param {Board} board
 * @param {unknown} cell
 * @param {Mark} mark
 * @returns {string | null}
 */
export function illegalReason(board, cell, mark) {
  if (!Number.isInteger(cell) || /** @type {number} */ (cell) < 0 || /** @type {number} */ (cell) > 8) {
    return 'no such cell';
  }
  const o = outcome(board);
  if (o.state !== 'playing') return 'the round is over';
  if (o.turn !== mark) return `it is ${o.turn}'s turn`;
  if (board[/** @type {number} */ (cell)] !== null) return 'that cell is taken';
  return null;
}

/**
 * The board after `mark` plays `cell`; throws on an illegal move.
 * @param {Board} board
 * @param {number} cell
 * @param {Mark} mark
 * @returns {Board}
 */
export function play(board, cell, mark) {
  const why = illegalReason(board, cell, mark);
  if (why) throw new Error(`illegal move: ${why}`);
  const next = board.slice();
  next[cell] = mark;
  return next;
}

/**
 * A cell's name for people: columns a–c, rows 1–3 from the top (a1 is top left).
 * @param {number} cell
 */
export function cellName(cell) {
  return `${'abc'[cell % 3]}${Math.floor(cell / 3) + 1}`;
}

// ------------------------------------------------------------------ wire format

/**
 * The game message for a move.
 * @param {number} cell
 */
export function moveMessage(cell) {
  return { move: cell };
}

/** The game message that starts the next round. */
export function rematchMessage() {
  return { rematch: true };
}

/**
 * What a game message's `data` is: a move, a rematch, a chat line or something else.
 * @param {unknown} data
 * @returns {{kind: 'move', cell: unknown} | {kind: 'rematch'} | {kind: 'text', text: string} | {kind: 'other'}}
 */
export function parseMessage(data) {
  // A bare string (e.g. from a terminal client) is a chat line too.
  if (typeof data === 'string') return { kind: 'text', text: data };
  if (data && typeof data === 'object' && !Array.isArray(data)) {
    const d = /** @type {Record<string, unknown>} */ (data);
    if ('move' in d) return { kind: 'move', cell: d.move };
    if (d.rematch === true) return { kind: 'rematch' };
    if (typeof d.text === 'string') return { kind: 'text', text: d.text };
  }
  return { kind: 'other' };
}

// ------------------------------------------------------------------ a match of rounds

/**
 * @typedef {object} Match
 * @property {string} owner the first seat (X in even rounds)
 * @property {string | null} opponent the second seat, null while it is free
 * @property {number} round 0, 1, 2, …
 * @property {Board} board the current round's board
 * @property {number[]} moves the current round's cells, in order
 * @property {{owner: number, opponent: number, draws: number}} score finished rounds
 * @property {number} lastSeq the highest game seq applied
 */

/**
 * @typedef {object} MatchEvent
 * @property {'move' | 'rematch' | 'text' | 'ignored'} kind
 * @property {number} seq
 * @property {string} from
 * @property {number} [cell]
 * @property {Mark} [mark]
 * @property {string} [text]
 * @property {string} [reason] why a message was ignored
 * @property {ReturnType<typeof outcome>} [outcome] the round's state after a move
 */

/**
 * A new match between the two seats of a game.
 * @param {{owner: string, opponent?: string | null}} seats
 * @returns {Match}
 */
export function newMatch({ owner, opponent = null }) {
  return {
    owner,
    opponent: opponent ?? null,
    round: 0,
    board: emptyBoard(),
    moves: [],
    score: { owner: 0, opponent: 0, draws: 0 },
    lastSeq: 0,
  };
}

/**
 * Who plays `mark` in the match's current round (null while the second seat is free).
 * @param {Match} match
 * @param {Mark} mark
 * @returns {string | null}
 */
export function playerFor(match, mark) {
  const ownerIsX = match.round % 2 === 0;
  return (mark === 'X') === ownerIsX ? match.owner : match.opponent;
}

/**
 * The mark `user` plays in the current round, or null for anyone else.
 * @param {Match} match
 * @param {string | null | undefined} user
 * @returns {Mark | null}
 */
export function markOf(match, user) {
  if (!user) return null;
  if (playerFor(match, 'X') === user) return 'X';
  if (playerFor(match, 'O') === user) return 'O';
  return null;
}

/**
 * Apply one game message (`{from, data, seq}`, from a `game.message` frame) to a match.
 * Pure: returns the new match and what happened. Messages are applied in seq order;
 * one at or below `lastSeq` is a duplicate and is ignored, and so is anything the rules
 * forbid (a move out of turn, on a taken cell, by someone who is not a player, after the
 * round ended, a rematch before it ended).
 * @param {Match} match
 * @param {{from: string, data: unknown, seq: number}} msg
 * @returns {{match: Match, event: MatchEvent}}
 */
export function applyMessage(match, msg) {
  const { from, data, seq } = msg;
  /** @param {string} reason */
  const ignore = (reason) => ({ match, event: /** @type {MatchEvent} */ ({ kind: 'ignored', seq, from, reason }) });
  if (typeof seq === 'number' && seq <= match.lastSeq) return ignore('duplicate');
  const lastSeq = typeof seq === 'number' ? seq : match.lastSeq;
  let m = match;
  // Only the two players can send in a game; the first sender who is not the owner is
  // the opponent, even when this client has not learnt the second seat yet.
  if (from !== m.owner && m.opponent === null) m = { ...m, opponent: from };
  const isPlayer = from === m.owner || from === m.opponent;
  const parsed = parseMessage(data);
  if (parsed.kind === 'text') {
    return { match: { ...m, lastSeq }, event: { kind: 'text', seq, from, text: parsed.text } };
  }
  if (!isPlayer) return ignore('not a player');
  if (parsed.kind === 'move') {
    const mark = /** @type {Mark} */ (markOf(m, from));
    const why = illegalReason(m.board, parsed.cell, mark);
    if (why) return ignore(why);
    const cell = /** @type {number} */ (parsed.cell);
    const board = play(m.board, cell, mark);
    const o = outcome(board);
    const score = { ...m.score };
    if (o.state === 'won') {
      if (playerFor(m, o.winner) === m.owner) score.owner += 1;
      else score.opponent += 1;
    } else if (o.state === 'draw') {
      score.draws += 1;
    }
    return {
      match: { ...m, board, moves: [...m.moves, cell], score, lastSeq },
      event: { kind: 'move', seq, from, cell, mark, outcome: o },
    };
  }
  if (parsed.kind === 'rematch') {
    if (outcome(m.board).state === 'playing') return ignore('the round is not over');
    return {
      match: { ...m, round: m.round + 1, board: emptyBoard(), moves: [], lastSeq },
      event: { kind: 'rematch', seq, from },
    };
  }
  return ignore('not a tic-tac-toe message');
}

/**
 * Rebuild a match from a game's log (any order; sorted by seq here).
 * @param {{owner: string, opponent?: string | null}} seats
 * @param {Iterable<{from: string, data: unknown, seq: number}>} messages
 * @returns {{match: Match, events: MatchEvent[]}}
 */
export function replay(seats, messages) {
  const sorted = [...messages].sort((a, b) => a.seq - b.seq);
  let match = newMatch(seats);
  /** @type {MatchEvent[]} */
  const events = [];
  for (const msg of sorted) {
    const r = applyMessage(match, msg);
    match = r.match;
    events.push(r.event);
  }
  return { match, events };
}
