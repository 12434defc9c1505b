// Unit tests of the app's tic-tac-toe rules (web/tictactoe.js): node --test e2e/tictactoe.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

// web/ has no package.json, so a Node without ES module syntax detection (before 20.19)
// reads tictactoe.js as CommonJS; the same source then loads as a data: URL module.
const source = new URL('../web/tictactoe.js', import.meta.url);
const T = await import(source.href).catch(() =>
  import(`data:text/javascript;charset=utf-8,${encodeURIComponent(readFileSync(source, 'utf8'))}`),
);

/** A board from a 9-character picture: X, O or '.' per cell. */
const B = (s) => [...s.replace(/\s+/g, '')].map((c) => (c === '.' ? null : c));

test('empty board: X moves first, nobody has won', () => {
  const b = T.emptyBoard();
  assert.equal(b.length, 9);
  assert.equal(T.turn(b), 'X');
  assert.equal(T.winner(b), null);
  assert.deepEqual(T.outcome(b), { state: 'playing', turn: 'X' });
});

test('turns alternate', () => {
  assert.equal(T.turn(B('X........')), 'O');
  assert.equal(T.turn(B('XO.......')), 'X');
  assert.equal(T.turn(B('XOX......')), 'O');
});

test('every line wins, for either mark', () => {
  for (const line of T.LINES) {
    for (const mark of ['X', 'O']) {
      const b = T.emptyBoard();
      for (const i of line) b[i] = mark;
      assert.deepEqual(T.winner(b), { mark, line: [...line] });
      assert.equal(T.outcome(b).state, 'won');
    }
  }
});

test('a full board with no line is a draw', () => {
  const b = B('XOX XOO OXX');
  assert.equal(T.winner(b), null);
  assert.equal(T.isFull(b), true);
  assert.deepEqual(T.outcome(b), { state: 'draw' });
});

test('a win on the last cell is a win, not a draw', () => {
  const b = B('XOX OXO OXX');
  assert.equal(T.isFull(b), true);
  assert.equal(T.outcome(b).state, 'won');
});

test('illegal moves are refused with a reason', () => {
  const b = B('X........');
  assert.equal(T.illegalReason(b, 0, 'O'), 'that cell is taken');
  assert.equal(T.illegalReason(b, 1, 'X'), "it is O's turn");
  assert.equal(T.illegalReason(b, 9, 'O'), 'no such cell');
  assert.equal(T.illegalReason(b, -1, 'O'), 'no such cell');
  assert.equal(T.illegalReason(b, 1.5, 'O'), 'no such cell');
  assert.equal(T.illegalReason(b, '1', 'O'), 'no such cell');
  assert.equal(T.illegalReason(b, 1, 'O'), null);
  assert.equal(T.illegalReason(B('XXX OO....'), 8, 'O'), 'the round is over');
  assert.throws(() => T.play(b, 0, 'O'), /illegal move/);
});

test('play returns a new board and leaves the old one alone', () => {
  const b = T.emptyBoard();
  const n = T.play(b, 4, 'X');
  assert.equal(n[4], 'X');
  assert.equal(b[4], null);
});

test('cell names: a1 top left, c3 bottom right', () => {
  assert.equal(T.cellName(0), 'a1');
  assert.equal(T.cellName(2), 'c1');
  assert.equal(T.cellName(4), 'b2');
  assert.equal(T.cellName(8), 'c3');
});

test('wire messages parse back', () => {
  assert.deepEqual(T.parseMessage(T.moveMessage(4)), { kind: 'move', cell: 4 });
  assert.deepEqual(T.parseMessage(T.rematchMessage()), { kind: 'rematch' });
  assert.deepEqual(T.parseMessage({ text: 'gg' }), { kind: 'text', text: 'gg' });
  assert.deepEqual(T.parseMessage('gg'), { kind: 'text', text: 'gg' });
  assert.deepEqual(T.parseMessage({ move: 'e4' }), { kind: 'move', cell: 'e4' });
  assert.deepEqual(T.parseMessage(42), { kind: 'other' });
  assert.deepEqual(T.parseMessage(null), { kind: 'other' });
  assert.deepEqual(T.parseMessage([1]), { kind: 'other' });
});

const msgs = (from, cells, seq0 = 1) =>
  cells.map((c, i) => ({ from: from[i % from.length], data: T.moveMessage(c), seq: seq0 + i }));

test('a match: owner is X, opponent O, owner wins the top row', () => {
  const log = msgs(['alice', 'bob'], [0, 3, 1, 4, 2]);
  const { match, events } = T.replay({ owner: 'alice', opponent: 'bob' }, log);
  assert.deepEqual(match.board, B('XXX OO. ...'));
  assert.equal(T.markOf(match, 'alice'), 'X');
  assert.equal(T.markOf(match, 'bob'), 'O');
  assert.equal(T.markOf(match, 'wendy'), null);
  const last = events.at(-1);
  assert.equal(last.kind, 'move');
  assert.deepEqual(last.outcome, { state: 'won', winner: 'X', line: [0, 1, 2] });
  assert.deepEqual(match.score, { owner: 1, opponent: 0, draws: 0 });
  assert.equal(match.lastSeq, 5);
});

test('moves out of turn, by non-players, on taken cells or after the end are ignored', () => {
  const seats = { owner: 'alice', opponent: 'bob' };
  const log = [
    { from: 'bob', data: { move: 4 }, seq: 1 }, // O before X
    { from: 'alice', data: { move: 4 }, seq: 2 },
    { from: 'alice', data: { move: 0 }, seq: 3 }, // twice in a row
    { from: 'bob', data: { move: 4 }, seq: 4 }, // taken
    { from: 'mallory', data: { move: 0 }, seq: 5 }, // not a player (opponent is known)
    { from: 'bob', data: { move: 0 }, seq: 6 },
    { from: 'alice', data: { move: 'b2' }, seq: 7 }, // not a cell index
  ];
  const { match, events } = T.replay(seats, log);
  assert.deepEqual(match.board, B('O... X....'));
  assert.deepEqual(
    events.map((e) => e.kind),
    ['ignored', 'move', 'ignored', 'ignored', 'ignored', 'move', 'ignored'],
  );
  assert.equal(events[0].reason, "it is X's turn");
  assert.equal(events[4].reason, 'not a player');
  // After a win nothing more is accepted.
  const won = T.replay(seats, msgs(['alice', 'bob'], [0, 3, 1, 4, 2, 5])).match;
  assert.deepEqual(won.board, B('XXX OO. ...'));
});

test('duplicates (a seq seen before) are ignored; the log may come in any order', () => {
  const seats = { owner: 'alice', opponent: 'bob' };
  const log = msgs(['alice', 'bob'], [4, 0, 8]);
  const shuffled = [log[2], log[0], log[1], log[0]];
  const { match } = T.replay(seats, shuffled);
  assert.deepEqual(match.board, B('O... X... X'));
  const again = T.applyMessage(match, log[1]);
  assert.equal(again.match, match);
  assert.equal(again.event.reason, 'duplicate');
});

test('the opponent is learnt from the first message by someone other than the owner', () => {
  const { match } = T.replay({ owner: 'alice' }, msgs(['alice', 'bob'], [4, 0]));
  assert.equal(match.opponent, 'bob');
  assert.equal(T.markOf(match, 'bob'), 'O');
});

test('rematch: only after the round ends; marks swap every round; the score adds up', () => {
  const seats = { owner: 'alice', opponent: 'bob' };
  let seq = 0;
  const log = [];
  const add = (from, data) => log.push({ from, data, seq: ++seq });
  add('bob', T.rematchMessage()); // too early: ignored
  for (const [who, c] of [['alice', 0], ['bob', 3], ['alice', 1], ['bob', 4], ['alice', 2]]) add(who, T.moveMessage(c));
  add('bob', T.rematchMessage());
  add('alice', T.rematchMessage()); // the second click of a race: the new round is not over
  // Round 1: bob is X and moves first; a draw.
  const draw = [4, 0, 8, 2, 1, 7, 6, 5, 3]; // X O X O X O X O X
  draw.forEach((c, i) => add(i % 2 === 0 ? 'bob' : 'alice', T.moveMessage(c)));
  const { match, events } = T.replay(seats, log);
  assert.equal(events[0].kind, 'ignored');
  assert.equal(events[6].kind, 'rematch');
  assert.equal(events[7].kind, 'ignored');
  assert.equal(match.round, 1);
  assert.equal(T.markOf(match, 'bob'), 'X');
  assert.equal(T.playerFor(match, 'O'), 'alice');
  assert.deepEqual(T.outcome(match.board), { state: 'draw' });
  assert.deepEqual(match.score, { owner: 1, opponent: 0, draws: 1 });
  assert.equal(match.moves.length, 9);
});

test('chat lines pass through and do not change the board', () => {
  const { match, events } = T.replay({ owner: 'alice', opponent: 'bob' }, [
    { from: 'bob', data: { text: 'good luck' }, seq: 1 },
    { from: 'alice', data: { move: 4 }, seq: 2 },
  ]);
  assert.deepEqual(events[0], { kind: 'text', seq: 1, from: 'bob', text: 'good luck' });
  assert.equal(match.board[4], 'X');
});

test('the functions are pure: replaying twice gives equal results', () => {
  const log = msgs(['alice', 'bob'], [0, 4, 8, 2]);
  const a = T.replay({ owner: 'alice', opponent: 'bob' }, log);
  const b = T.replay({ owner: 'alice', opponent: 'bob' }, log);
  assert.deepEqual(a, b);
  assert.equal(log[0].data.move, 0);
});
