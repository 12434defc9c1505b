// Type declarations for switchboard.js (Switchboard wire protocol v1, docs/PROTOCOL.md).

export declare const PROTOCOL_VERSION: 1;

/** Error codes the client produces itself (server codes: see `ServerErrorCode`). */
export type ClientErrorCode = 'timeout' | 'not_connected' | 'disconnected' | 'closed' | 'connect_failed' | 'protocol';
/** Stable error codes of the gateway (PROTOCOL.md §8). */
export type ServerErrorCode =
  | 'unauthorized'
  | 'bad_request'
  | 'too_large'
  | 'rate_limited'
  | 'forbidden'
  | 'not_found'
  | 'room_full'
  | 'conflict'
  | 'unavailable'
  | 'internal';

export declare const CLIENT_ERROR_CODES: readonly ClientErrorCode[];
/** Close codes after which the client does not reconnect by itself. */
export declare const NO_RETRY_CLOSE_CODES: readonly number[];

/** An `error` frame from the gateway, or a client-side failure. */
export declare class SwitchboardError extends Error {
  constructor(
    code: string,
    message: string,
    extra?: { frame?: ErrorFrame; closeCode?: number; closeReason?: string; cause?: unknown },
  );
  readonly name: 'SwitchboardError';
  code: ServerErrorCode | ClientErrorCode | (string & {});
  /** The gateway's `error` frame, when there was one. */
  frame?: ErrorFrame;
  /** The close code, when the error ended a connection. */
  closeCode?: number;
  closeReason?: string;
}

/** Mint a token from a dev-mode gateway (`GET /dev/token`); uses the global `fetch`. */
export declare function fetchDevToken(baseUrl: string, user: string, name?: string): Promise<string>;
/** `ws://host:port/ws` → `http://host:port`. */
export declare function httpBase(url: string): string;

// ------------------------------------------------------------------ frames

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
/** Request ids are assigned by the client (numbers), but the gateway echoes any JSON. */
export type RequestId = Json;

export interface Member {
  user: string;
  name: string;
}

export interface WelcomeFrame {
  type: 'welcome';
  user: string;
  name: string;
  session: string;
  replica: string;
  heartbeat_s: number;
  /** Epoch of the user's DM log (send it back as `dm_epoch`); absent from older gateways. */
  dm_epoch?: string;
}
export interface MessageFrame {
  type: 'message';
  room: string;
  from: string;
  name: string;
  data: Json;
  seq: number;
  ts: number;
}
export interface DirectFrame {
  type: 'direct';
  from: string;
  name: string;
  data: Json;
  seq: number;
  ts: number;
}
export interface BroadcastFrame {
  type: 'broadcast';
  from: string;
  name: string;
  data: Json;
  ts: number;
}
export interface PresenceFrame {
  type: 'presence';
  id?: RequestId;
  room: string;
  members: Member[];
  count: number;
}
export interface WhoFrame {
  type: 'who';
  id?: RequestId;
  users: Member[];
  count: number;
  next?: string;
}
export interface OnlineChangesFrame {
  type: 'online.changes';
  /** Users who came online (their first session anywhere). */
  online: Member[];
  /** Users who went offline (their last session ended). */
  offline: string[];
  /** Users left out of this frame (over the batch limit): refresh with `who`. */
  dropped: number;
}
export interface MemberJoinedFrame {
  type: 'member.joined';
  room: string;
  user: string;
  name: string;
  count: number;
}
export interface MemberLeftFrame {
  type: 'member.left';
  room: string;
  user: string;
  name: string;
  count: number;
}
export interface MemberRenamedFrame {
  type: 'member.renamed';
  room: string;
  user: string;
  name: string;
}
/** Success reply; which fields are present depends on the request (PROTOCOL.md §3). */
export interface OkFrame {
  type: 'ok';
  id?: RequestId;
  room?: string;
  seq?: number;
  name?: string;
  role?: GameRole;
  owner?: string;
  opponent?: string;
  started?: boolean;
  recovered?: boolean;
  replayed?: number;
  /** join, game.join, game.watch: the stream's epoch (absent from older gateways). */
  epoch?: string;
}
export interface ErrorFrame {
  type: 'error';
  id?: RequestId;
  code: ServerErrorCode;
  message: string;
}
export interface ReconnectFrame {
  type: 'reconnect';
  reason: string;
  after_ms: number;
}
export interface PingFrame {
  type: 'ping';
}
export interface PongFrame {
  type: 'pong';
  id?: RequestId;
}
export interface CloseFrame {
  type: 'close';
  code: number;
  reason: string;
}
export type GameRole = 'player' | 'watcher';
export type GameTarget = 'all' | 'opponent' | 'watchers';
export interface GameCreatedFrame {
  type: 'game.created';
  id?: RequestId;
  room: string;
  owner: string;
}
export interface GameStartedFrame {
  type: 'game.started';
  room: string;
  owner: string;
  opponent: string;
}
export interface GameMessageFrame {
  type: 'game.message';
  room: string;
  from: string;
  to: GameTarget;
  data: Json;
  seq: number;
}
export interface GameClosedFrame {
  type: 'game.closed';
  room: string;
  reason: 'left' | 'closed' | 'abandoned';
}
export interface RankQueuedFrame {
  type: 'rank.queued';
  id?: RequestId;
  rating: number;
  /** Players in the queue as the gateway last saw it. */
  queued: number;
  /** After this long unmatched the player gets `rank.timeout` and leaves the queue. */
  max_wait_ms: number;
}
/** Sent every `rank_status_interval` while the player waits. */
export interface RankWaitingFrame {
  type: 'rank.waiting';
  queued: number;
  /** The rating gap the player accepts now. */
  window: number;
  waited_ms: number;
}
export interface RankTimeoutFrame {
  type: 'rank.timeout';
  waited_ms: number;
}
/** A stream's log started again under a new epoch; its seqs restart at 1. */
export interface StreamResetFrame {
  type: 'stream.reset';
  stream: 'room' | 'game' | 'dm';
  /** room and game streams */
  room?: string;
  epoch: string;
}
export interface RankMatchedFrame {
  type: 'rank.matched';
  room: string;
  opponent: string;
  opponent_rating: number;
  /** Place in the user's stream, shared with `direct` (resumed with `dm_since`). */
  seq: number;
}

export type ServerFrame =
  | WelcomeFrame
  | MessageFrame
  | DirectFrame
  | BroadcastFrame
  | PresenceFrame
  | WhoFrame
  | OnlineChangesFrame
  | MemberJoinedFrame
  | MemberLeftFrame
  | MemberRenamedFrame
  | OkFrame
  | ErrorFrame
  | ReconnectFrame
  | PingFrame
  | PongFrame
  | CloseFrame
  | GameCreatedFrame
  | GameStartedFrame
  | GameMessageFrame
  | GameClosedFrame
  | RankQueuedFrame
  | RankWaitingFrame
  | RankTimeoutFrame
  | RankMatchedFrame
  | StreamResetFrame;

/** Any client frame (`id` is added by the client). */
export type ClientFrame = { type: string; [field: string]: unknown };

// Reply shapes of the request methods.
export interface JoinOk extends OkFrame {
  room: string;
}
export interface SeqOk extends OkFrame {
  seq: number;
}
export interface RenameOk extends OkFrame {
  name: string;
}
export interface RefreshOk extends OkFrame {
  /** The session's new end: the token's `exp` (Unix seconds). */
  exp: number;
}
export interface GameEnterOk extends OkFrame {
  room: string;
  role: GameRole;
  owner: string;
  started: boolean;
}

// ------------------------------------------------------------------ events

export type ConnectionState = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed';

export interface StateEvent {
  state: ConnectionState;
  previous: ConnectionState;
  /** Consecutive failed attempts (connecting / reconnecting). */
  attempt?: number;
  /** Wait before the next attempt (connecting / reconnecting). */
  delayMs?: number;
  /** Close code and reason of the connection that ended. */
  closeCode?: number;
  closeReason?: string;
  /** Why the connection ended or why the client gave up (closed). */
  error?: unknown;
  /** open: the welcome of this connection, its URL, and whether it resumed a session. */
  welcome?: WelcomeFrame;
  url?: string;
  resumed?: boolean;
  /** closed by close(): 'client closed'. */
  reason?: string;
}

/** Second argument of `message` and `game.message` handlers. */
export interface StreamInfo {
  /** The frame came from a `since` replay (before the join's ok). */
  replay: boolean;
}

export interface ResumeEvent {
  kind: 'room' | 'game';
  room: string;
  since: number;
  recovered: boolean;
  replayed: number;
}
export type GapEvent =
  | { kind: 'room' | 'game'; room: string; since: number; replayed: number }
  | { kind: 'dm'; since: number; seq: number }
  /** Emitted right after each `reset` event. */
  | { kind: 'room' | 'game' | 'dm'; room?: string; since: number; reset: true; epoch: string | null };
/**
 * A stream's log started again under a new epoch (`stream.reset`, e.g. Redis restarted
 * empty): the cursor starts over at seq 0 of `epoch`; the (lower) seqs that follow are
 * delivered; messages of the old log not received before may be lost.
 */
export interface ResetEvent {
  kind: 'room' | 'game' | 'dm';
  /** room and game streams */
  room?: string;
  epoch: string | null;
  /** The epoch of the old cursor (null if it was not known). */
  previousEpoch: string | null;
  /** The old cursor. */
  since: number;
}
export interface ResumeFailedEvent {
  kind: 'room' | 'game' | 'rank' | 'online';
  room?: string;
  error: SwitchboardError | Error;
}

export interface SwitchboardEventMap {
  welcome: [WelcomeFrame];
  message: [MessageFrame, StreamInfo];
  direct: [DirectFrame];
  broadcast: [BroadcastFrame];
  'member.joined': [MemberJoinedFrame];
  'member.left': [MemberLeftFrame];
  'member.renamed': [MemberRenamedFrame];
  'online.changes': [OnlineChangesFrame];
  'game.started': [GameStartedFrame];
  'game.message': [GameMessageFrame, StreamInfo];
  'game.closed': [GameClosedFrame];
  'rank.matched': [RankMatchedFrame];
  'rank.waiting': [RankWaitingFrame];
  'rank.timeout': [RankTimeoutFrame];
  reconnect: [ReconnectFrame];
  /** An `error` frame that answers no pending request (e.g. `rate_limited`). */
  error: [ErrorFrame];
  ping: [PingFrame];
  /** Replies whose request is no longer pending (e.g. after its timeout). */
  ok: [OkFrame];
  pong: [PongFrame];
  presence: [PresenceFrame];
  who: [WhoFrame];
  'game.created': [GameCreatedFrame];
  'rank.queued': [RankQueuedFrame];
  close: [CloseFrame];
  /** Every frame received, before any processing. */
  frame: [ServerFrame];
  state: [StateEvent];
  connecting: [StateEvent];
  open: [StateEvent];
  reconnecting: [StateEvent];
  closed: [StateEvent];
  resume: [ResumeEvent];
  gap: [GapEvent];
  reset: [ResetEvent];
  'stream.reset': [StreamResetFrame];
  'resume.failed': [ResumeFailedEvent];
}
export type SwitchboardEventType = keyof SwitchboardEventMap;

// ------------------------------------------------------------------ options

export interface UrlContext {
  /** 0 for the first connection, then the number of consecutive failures. */
  attempt: number;
  previousUrl: string | undefined;
  /** 'initial', 'drain', 'closed', 'error', 'heartbeat', 'login' or 'manual'. */
  reason: string;
  closeCode: number | undefined;
}

export interface TokenContext {
  attempt: number;
  reason: string;
  /** The URL about to be connected to. */
  url: string;
}

export interface ReconnectOptions {
  /** First back-off delay. Default 500. */
  minMs?: number;
  /** Longest back-off delay. Default 30000. */
  maxMs?: number;
  /** Growth per failed attempt. Default 2. */
  factor?: number;
  /** 0…1: each delay is cut by up to this fraction at random. Default 0.5. */
  jitter?: number;
  /** Consecutive failed attempts before giving up. Default Infinity. */
  maxAttempts?: number;
}

export interface HeartbeatOptions {
  /** Send a `ping` after this long without inbound frames. Default: welcome.heartbeat_s. */
  intervalMs?: number;
  /** Reconnect when nothing at all arrived within this long after that ping. Default 10000. */
  timeoutMs?: number;
}

/** The subset of the WebSocket API the client uses (browser WebSocket, `ws`, undici). */
export interface WebSocketLike {
  readyState: number;
  binaryType: string;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: any) => void) | null;
  onmessage: ((ev: { data: any }) => void) | null;
  onerror: ((ev: any) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  /** `ws` only: drop the socket without a close handshake. */
  terminate?(): void;
}
export type WebSocketConstructor = new (url: string) => WebSocketLike;

export interface ClientOptions {
  /**
   * WebSocket URL, a list tried in turn (each reconnect moves to the next entry), or a
   * function called before every attempt. Default in a browser page: ws(s)://<host>/ws.
   */
  url?: string | string[] | ((ctx: UrlContext) => string | Promise<string>);
  /** A JWT. Give this or `getToken`. */
  token?: string;
  /** Called before every connection attempt, for a fresh token. */
  getToken?: (ctx: TokenContext) => string | Promise<string>;
  /** WebSocket constructor; default globalThis.WebSocket (Node 20: pass the `ws` package). */
  WebSocket?: WebSocketConstructor | (new (url: string) => any);
  /** Back-off settings, or false to never reconnect. */
  reconnect?: ReconnectOptions | false;
  /** Dead-connection detection, or false to turn it off. */
  heartbeat?: HeartbeatOptions | false;
  /** Default timeout of every request. Default 10000. */
  requestTimeoutMs?: number;
  /** Time for getToken, the socket to open and `welcome` to arrive. Default 10000. */
  connectTimeoutMs?: number;
  /** Last DM seq seen in an earlier run; sent as `dm_since` on the first login. */
  dmSince?: number;
  /** The epoch `dmSince` belongs to (`client.epochs.dm` of that run); sent as `dm_epoch`. */
  dmEpoch?: string;
  /** Re-join rooms and games, re-queue and re-apply rename after reconnects. Default true. */
  resume?: boolean;
  /** Log hook. */
  debug?: (message: string, detail?: unknown) => void;
}

export interface RequestOptions {
  timeoutMs?: number;
}

export interface Cursors {
  dm: number | null;
  rooms: Record<string, number | null>;
  games: Record<string, number | null>;
}

/** The epoch of each resume cursor (null: unknown, e.g. an older gateway). */
export interface Epochs {
  dm: string | null;
  rooms: Record<string, string | null>;
  games: Record<string, string | null>;
}

export interface ClientStats {
  framesIn: number;
  framesOut: number;
  duplicatesDropped: number;
  reconnects: number;
  connections: number;
}

// ------------------------------------------------------------------ client

export declare class SwitchboardClient {
  constructor(options?: ClientOptions);

  /** Re-join requests in flight at once during a resume. */
  static RESUME_CONCURRENCY: number;
  /** How long a connection must last to reset the back-off. */
  static STABLE_MS: number;

  requestTimeoutMs: number;
  connectTimeoutMs: number;

  readonly state: ConnectionState;
  readonly welcome: WelcomeFrame | null;
  readonly user: string | null;
  readonly name: string | null;
  readonly url: string | null;
  readonly rooms: string[];
  readonly games: { room: string; role: GameRole }[];
  readonly rankQueued: boolean;
  readonly onlineWatching: { all: true } | { users: string[] } | null;
  readonly cursors: Cursors;
  readonly epochs: Epochs;
  readonly stats: ClientStats;

  /** Connect and log in; resolves with the first `welcome`, rejects when the client gives up. */
  connect(): Promise<WelcomeFrame>;
  /** Close for good (code 1000); pending requests reject with `closed`; tracking is cleared. */
  close(): void;
  /** Drop the connection and reconnect at once (or cut short a back-off wait). */
  reconnectNow(): void;

  on<K extends SwitchboardEventType>(type: K, handler: (...args: SwitchboardEventMap[K]) => void): () => void;
  on(type: string, handler: (payload: any, info?: any) => void): () => void;
  once<K extends SwitchboardEventType>(type: K, handler: (...args: SwitchboardEventMap[K]) => void): () => void;
  once(type: string, handler: (payload: any, info?: any) => void): () => void;
  waitFor<K extends SwitchboardEventType>(
    type: K,
    opts?: { filter?: (...args: SwitchboardEventMap[K]) => boolean; timeoutMs?: number },
  ): Promise<SwitchboardEventMap[K][0]>;

  /** Send any client frame and wait for its reply; an `error` reply rejects. */
  request(frame: ClientFrame, opts?: RequestOptions): Promise<ServerFrame>;

  join(room: string, opts?: { since?: number; epoch?: string } & RequestOptions): Promise<JoinOk>;
  leave(room: string, opts?: RequestOptions): Promise<JoinOk>;
  publish(room: string, data: unknown, opts?: { echo?: boolean } & RequestOptions): Promise<SeqOk>;
  send(user: string, data: unknown, opts?: RequestOptions): Promise<SeqOk>;
  presence(room: string, opts?: RequestOptions): Promise<PresenceFrame>;
  who(opts?: { cursor?: string; limit?: number } & RequestOptions): Promise<WhoFrame>;
  whoAll(opts?: { limit?: number } & RequestOptions): Promise<Member[]>;
  rename(name: string, opts?: RequestOptions): Promise<RenameOk>;
  /** A newer token for the same user before `exp` (else close 4011); used for reconnects too. */
  refresh(token: string, opts?: RequestOptions): Promise<RefreshOk>;
  broadcast(data: unknown, opts?: RequestOptions): Promise<OkFrame>;
  /** Round trip in milliseconds. */
  ping(opts?: RequestOptions): Promise<number>;

  /** Watch everyone (`'all'`) or a list of user ids; `online.changes` events follow. */
  onlineWatch(target: 'all' | string[] | { all: true } | { users: string[] }, opts?: RequestOptions): Promise<OkFrame>;
  onlineUnwatch(opts?: RequestOptions): Promise<OkFrame>;

  gameCreate(opts?: RequestOptions): Promise<GameCreatedFrame>;
  gameJoin(room: string, opts?: { since?: number; epoch?: string } & RequestOptions): Promise<GameEnterOk>;
  gameWatch(room: string, opts?: { since?: number; epoch?: string } & RequestOptions): Promise<GameEnterOk>;
  gameSend(room: string, data: unknown, to?: GameTarget, opts?: RequestOptions): Promise<SeqOk>;
  gameLeave(room: string, opts?: RequestOptions): Promise<JoinOk>;
  gameClose(room: string, opts?: RequestOptions): Promise<JoinOk>;

  rankJoin(opts?: RequestOptions): Promise<RankQueuedFrame>;
  rankLeave(opts?: RequestOptions): Promise<OkFrame>;
}

export default SwitchboardClient;
