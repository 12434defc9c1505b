//! What a typed line means: plain text to say in the current room, or a `/command`.

use crate::protocol::GameTarget;

/// One line of input, understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    /// A blank line: nothing to do.
    Nothing,
    /// Publish to the current room.
    Say(String),
    /// Join a room (or make an already joined one current).
    Join(String),
    /// Leave the named room, or the current one.
    Leave(Option<String>),
    Rooms,
    Msg {
        to: String,
        text: String,
    },
    Who,
    /// Who is in the named room, or in the current one.
    Presence(Option<String>),
    Name(String),
    Broadcast(String),
    Game(GameAction),
    /// Join the ranked queue (`false`: leave it).
    Rank(bool),
    Online(OnlineWatch),
    Help,
    Quit,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum GameAction {
    Create,
    Join(String),
    Watch(String),
    Say { to: GameTarget, text: String },
    Leave,
    Close,
}

/// The `/online` setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OnlineWatch {
    All,
    Users(Vec<String>),
    Off,
}

/// The command list `/help` prints.
pub(crate) const HELP: &str = "\
text                      say it in the current room (//text says \"/text\")
/join ROOM                join a room (history first) and talk there; again: switch to it
/leave [ROOM]             leave the current (or named) room
/rooms                    the rooms you are in
/msg USER TEXT            direct message (kept for offline users)
/who                      who is online
/presence [ROOM]          who is in the current (or named) room
/name NEW NAME            change your display name
/broadcast TEXT           message everyone (needs the broadcast permission)
/game create              create a game; share its id
/game join ID | watch ID  play or watch a game
/game say [opponent|watchers] TEXT   send to everyone in the game, or only some
/game leave | close       leave the game (ends it for players) / close it (owner)
/rank [leave]             find a ranked match (the game is joined for you) / stop looking
/online [all|USER,USER|off]   hear who comes online and goes offline
/help                     this list
/quit                     leave (end of input quits too)";

/// Reads one input line.
pub(crate) fn parse(line: &str) -> Result<Action, String> {
    let line = line.trim_end_matches(['\r', '\n']);
    if line.trim().is_empty() {
        return Ok(Action::Nothing);
    }
    if let Some(escaped) = line.strip_prefix("//") {
        return Ok(Action::Say(format!("/{escaped}")));
    }
    let Some(command) = line.strip_prefix('/') else {
        return Ok(Action::Say(line.to_owned()));
    };
    let (name, rest) = split_word(command);
    match name.to_ascii_lowercase().as_str() {
        "join" | "j" => one_word(rest, "/join ROOM").map(Action::Join),
        "leave" | "part" => Ok(Action::Leave(optional_word(rest, "/leave [ROOM]")?)),
        "rooms" => no_args(rest, "/rooms", Action::Rooms),
        "msg" | "dm" => match split_word(rest) {
            (to, text) if !to.is_empty() && !text.is_empty() => Ok(Action::Msg {
                to: to.to_owned(),
                text: text.to_owned(),
            }),
            _ => Err(usage("/msg USER TEXT")),
        },
        "who" => no_args(rest, "/who", Action::Who),
        "presence" => Ok(Action::Presence(optional_word(rest, "/presence [ROOM]")?)),
        "name" | "nick" => non_empty(rest, "/name NEW NAME").map(Action::Name),
        "broadcast" => non_empty(rest, "/broadcast TEXT").map(Action::Broadcast),
        "game" | "g" => game(rest).map(Action::Game),
        "rank" => match rest {
            "" | "join" => Ok(Action::Rank(true)),
            "leave" | "off" => Ok(Action::Rank(false)),
            _ => Err(usage("/rank [leave]")),
        },
        "online" => online(rest).map(Action::Online),
        "help" | "?" => Ok(Action::Help),
        "quit" | "exit" | "q" => Ok(Action::Quit),
        _ => Err(format!("unknown command /{name} (/help lists them)")),
    }
}

fn game(rest: &str) -> Result<GameAction, String> {
    const USAGE: &str =
        "/game create | join ID | watch ID | say [opponent|watchers] TEXT | leave | close";
    let (verb, rest) = split_word(rest);
    match verb {
        "create" | "new" => no_args(rest, "/game create", GameAction::Create),
        "join" => one_word(rest, "/game join ID").map(GameAction::Join),
        "watch" => one_word(rest, "/game watch ID").map(GameAction::Watch),
        "say" => {
            let (first, after) = split_word(rest);
            let (to, text) = match first {
                "opponent" => (GameTarget::Opponent, after),
                "watchers" => (GameTarget::Watchers, after),
                "all" => (GameTarget::All, after),
                _ => (GameTarget::All, rest),
            };
            let text = non_empty(text, "/game say [opponent|watchers] TEXT")?;
            Ok(GameAction::Say { to, text })
        }
        "leave" => no_args(rest, "/game leave", GameAction::Leave),
        "close" => no_args(rest, "/game close", GameAction::Close),
        _ => Err(usage(USAGE)),
    }
}

fn online(rest: &str) -> Result<OnlineWatch, String> {
    match rest {
        "" | "all" => Ok(OnlineWatch::All),
        "off" | "none" => Ok(OnlineWatch::Off),
        list => {
            let users: Vec<String> = list
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter(|u| !u.is_empty())
                .map(str::to_owned)
                .collect();
            if users.is_empty() {
                return Err(usage("/online [all|USER,USER|off]"));
            }
            Ok(OnlineWatch::Users(users))
        }
    }
}

/// The first word and the rest, both trimmed.
fn split_word(s: &str) -> (&str, &str) {
    let s = s.trim();
    match s.split_once(char::is_whitespace) {
        Some((word, rest)) => (word, rest.trim()),
        None => (s, ""),
    }
}

fn usage(text: &str) -> String {
    format!("usage: {text}")
}

fn no_args<T>(rest: &str, text: &str, value: T) -> Result<T, String> {
    if rest.is_empty() {
        Ok(value)
    } else {
        Err(usage(text))
    }
}

fn one_word(rest: &str, text: &str) -> Result<String, String> {
    match optional_word(rest, text)? {
        Some(word) => Ok(word),
        None => Err(usage(text)),
    }
}

fn optional_word(rest: &str, text: &str) -> Result<Option<String>, String> {
    match split_word(rest) {
        ("", _) => Ok(None),
        (word, "") => Ok(Some(word.to_owned())),
        _ => Err(usage(text)),
    }
}

fn non_empty(rest: &str, text: &str) -> Result<String, String> {
    if rest.is_empty() {
        Err(usage(text))
    } else {
        Ok(rest.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(line: &str) -> Action {
        match parse(line) {
            Ok(action) => action,
            Err(err) => panic!("{line:?}: {err}"),
        }
    }

    fn err(line: &str) -> String {
        match parse(line) {
            Ok(action) => panic!("{line:?} parsed as {action:?}"),
            Err(err) => err,
        }
    }

    #[test]
    fn text_and_blank_lines() {
        assert_eq!(ok(""), Action::Nothing);
        assert_eq!(ok("   \r\n"), Action::Nothing);
        assert_eq!(ok("hi there\r\n"), Action::Say("hi there".into()));
        assert_eq!(ok("  indented"), Action::Say("  indented".into()));
        assert_eq!(
            ok("//join is a command"),
            Action::Say("/join is a command".into())
        );
    }

    #[test]
    fn room_commands() {
        assert_eq!(ok("/join lobby"), Action::Join("lobby".into()));
        assert_eq!(ok("/JOIN  lobby "), Action::Join("lobby".into()));
        assert_eq!(ok("/leave"), Action::Leave(None));
        assert_eq!(ok("/leave dev"), Action::Leave(Some("dev".into())));
        assert_eq!(ok("/rooms"), Action::Rooms);
        assert_eq!(ok("/presence"), Action::Presence(None));
        assert_eq!(
            ok("/presence lobby"),
            Action::Presence(Some("lobby".into()))
        );
        assert_eq!(err("/join"), "usage: /join ROOM");
        assert_eq!(err("/join two words"), "usage: /join ROOM");
        assert_eq!(err("/rooms please"), "usage: /rooms");
    }

    #[test]
    fn people_commands() {
        assert_eq!(
            ok("/msg bob  psst, over here "),
            Action::Msg {
                to: "bob".into(),
                text: "psst, over here".into()
            }
        );
        assert_eq!(err("/msg bob"), "usage: /msg USER TEXT");
        assert_eq!(ok("/who"), Action::Who);
        assert_eq!(ok("/name Alice B."), Action::Name("Alice B.".into()));
        assert_eq!(err("/name"), "usage: /name NEW NAME");
        assert_eq!(
            ok("/broadcast maintenance at 5"),
            Action::Broadcast("maintenance at 5".into())
        );
        assert_eq!(ok("/online"), Action::Online(OnlineWatch::All));
        assert_eq!(ok("/online all"), Action::Online(OnlineWatch::All));
        assert_eq!(ok("/online off"), Action::Online(OnlineWatch::Off));
        assert_eq!(
            ok("/online alice,bob carol"),
            Action::Online(OnlineWatch::Users(vec![
                "alice".into(),
                "bob".into(),
                "carol".into()
            ]))
        );
        assert_eq!(err("/online ,"), "usage: /online [all|USER,USER|off]");
    }

    #[test]
    fn game_commands() {
        assert_eq!(ok("/game create"), Action::Game(GameAction::Create));
        assert_eq!(
            ok("/game join g-1"),
            Action::Game(GameAction::Join("g-1".into()))
        );
        assert_eq!(
            ok("/g watch g-1"),
            Action::Game(GameAction::Watch("g-1".into()))
        );
        assert_eq!(
            ok("/game say e4 e5"),
            Action::Game(GameAction::Say {
                to: GameTarget::All,
                text: "e4 e5".into()
            })
        );
        assert_eq!(
            ok("/game say opponent good luck"),
            Action::Game(GameAction::Say {
                to: GameTarget::Opponent,
                text: "good luck".into()
            })
        );
        assert_eq!(
            ok("/game say watchers note"),
            Action::Game(GameAction::Say {
                to: GameTarget::Watchers,
                text: "note".into()
            })
        );
        assert_eq!(
            ok("/game say opponents"),
            Action::Game(GameAction::Say {
                to: GameTarget::All,
                text: "opponents".into()
            })
        );
        assert_eq!(
            err("/game say opponent"),
            "usage: /game say [opponent|watchers] TEXT"
        );
        assert_eq!(ok("/game leave"), Action::Game(GameAction::Leave));
        assert_eq!(ok("/game close"), Action::Game(GameAction::Close));
        assert!(err("/game").starts_with("usage: /game create"));
        assert!(err("/game join").starts_with("usage: /game join ID"));
        assert_eq!(ok("/rank"), Action::Rank(true));
        assert_eq!(ok("/rank leave"), Action::Rank(false));
        assert_eq!(err("/rank now"), "usage: /rank [leave]");
    }

    #[test]
    fn help_quit_and_unknown() {
        assert_eq!(ok("/help"), Action::Help);
        assert_eq!(ok("/quit"), Action::Quit);
        assert_eq!(ok("/exit"), Action::Quit);
        assert_eq!(
            err("/frobnicate now"),
            "unknown command /frobnicate (/help lists them)"
        );
        assert_eq!(err("/"), "unknown command / (/help lists them)");
    }
}
