//! The Lua scripts beside this file, called by SHA (EVALSHA, reloaded when a Redis
//! restart flushed the script cache).

use super::*;

pub(super) struct Scripts {
    pub(super) publish_logged: Script,
    pub(super) replay: Script,
    pub(super) mark_delivered: Script,
    pub(super) session_add: Script,
    pub(super) session_remove: Script,
    pub(super) room_join: Script,
    pub(super) room_leave: Script,
    pub(super) room_members: Script,
    pub(super) online_touch: Script,
    pub(super) online_remove: Script,
    pub(super) online_page: Script,
    pub(super) online_expire: Script,
    pub(super) presence_refresh: Script,
    pub(super) names: Script,
    pub(super) range: Script,
    pub(super) game_create: Script,
    pub(super) game_join: Script,
    pub(super) game_watch: Script,
    pub(super) game_seat: Script,
    pub(super) game_close: Script,
    pub(super) rank_enqueue: Script,
    pub(super) rank_dequeue: Script,
    pub(super) rank_peek: Script,
    pub(super) rank_take: Script,
}

impl Scripts {
    pub(super) fn new() -> Self {
        Scripts {
            publish_logged: Script::from_lua(include_str!("publish_logged.lua")),
            replay: Script::from_lua(include_str!("replay.lua")),
            mark_delivered: Script::from_lua(include_str!("mark_delivered.lua")),
            session_add: Script::from_lua(include_str!("session_add.lua")),
            session_remove: Script::from_lua(include_str!("session_remove.lua")),
            room_join: Script::from_lua(include_str!("room_join.lua")),
            room_leave: Script::from_lua(include_str!("room_leave.lua")),
            room_members: Script::from_lua(include_str!("room_members.lua")),
            online_touch: Script::from_lua(include_str!("online_touch.lua")),
            online_remove: Script::from_lua(include_str!("online_remove.lua")),
            online_page: Script::from_lua(include_str!("online_page.lua")),
            online_expire: Script::from_lua(include_str!("online_expire.lua")),
            presence_refresh: Script::from_lua(include_str!("presence_refresh.lua")),
            names: Script::from_lua(include_str!("names.lua")),
            range: Script::from_lua(include_str!("range.lua")),
            game_create: Script::from_lua(include_str!("game_create.lua")),
            game_join: Script::from_lua(include_str!("game_join.lua")),
            game_watch: Script::from_lua(include_str!("game_watch.lua")),
            game_seat: Script::from_lua(include_str!("game_seat.lua")),
            game_close: Script::from_lua(include_str!("game_close.lua")),
            rank_enqueue: Script::from_lua(concat!(
                include_str!("rank_bump.lua"),
                include_str!("rank_enqueue.lua")
            )),
            rank_dequeue: Script::from_lua(concat!(
                include_str!("rank_bump.lua"),
                include_str!("rank_dequeue.lua")
            )),
            rank_peek: Script::from_lua(include_str!("rank_peek.lua")),
            rank_take: Script::from_lua(concat!(
                include_str!("rank_bump.lua"),
                include_str!("rank_take.lua")
            )),
        }
    }
}
