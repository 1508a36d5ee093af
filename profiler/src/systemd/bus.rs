//! The unit's state as its manager announces it on D-Bus: subscribed, the manager sends every
//! change of the unit's `ActiveState`, however short, and nothing is spawned per poll.
//!
//! It is asked through the system bus (dbus-daemon), a container's through that container's
//! bus socket. Not through the manager's private socket: the manager drops a peer whose
//! process is outside its PID namespace (a container's, seen from the host), and zbus 5 panics
//! on the sender its direct connections carry (`:no-sender`). Without a system bus the
//! recorder asks `systemctl show` once a second instead.

use std::{collections::HashMap, path::PathBuf};

use futures_util::StreamExt as _;
use tokio::sync::mpsc;
use zbus::{
    Connection, MatchRule, MessageStream,
    message::Type,
    zvariant::{OwnedObjectPath, OwnedValue},
};

use super::Systemd;

const MANAGER: &str = "org.freedesktop.systemd1";
const MANAGER_PATH: &str = "/org/freedesktop/systemd1";
const MANAGER_IFACE: &str = "org.freedesktop.systemd1.Manager";
const UNIT_IFACE: &str = "org.freedesktop.systemd1.Unit";
const PROPERTIES_IFACE: &str = "org.freedesktop.DBus.Properties";

/// The unit's states as they change, starting with the one it is in.
pub struct StateChanges {
    /// The socket the manager was reached on.
    pub socket: PathBuf,
    pub current: String,
    pub changes: mpsc::UnboundedReceiver<String>,
}

impl Systemd {
    /// Where this process reaches that manager's system bus (through the container's root for
    /// a container's manager).
    fn system_bus_socket(&self) -> PathBuf {
        let root = self.container_pid.map_or(String::new(), |pid| format!("/proc/{pid}/root"));
        PathBuf::from(format!("{root}/run/dbus/system_bus_socket"))
    }

    async fn connect_to_manager(&self) -> zbus::Result<(Connection, PathBuf)> {
        let socket = self.system_bus_socket();
        let stream = tokio::net::UnixStream::connect(&socket).await.map_err(|e| zbus::Error::InputOutput(e.into()))?;
        Ok((zbus::connection::Builder::unix_stream(stream).build().await?, socket))
    }

    /// Follows `unit`'s ActiveState: a task on the current tokio runtime sends each new value
    /// until the connection ends (the receiver then sees it closed).
    pub async fn follow_state(&self, unit: &str) -> zbus::Result<StateChanges> {
        let (conn, socket) = self.connect_to_manager().await?;
        let path: OwnedObjectPath =
            conn.call_method(Some(MANAGER), MANAGER_PATH, Some(MANAGER_IFACE), "LoadUnit", &(unit,)).await?.body().deserialize()?;
        // Held loaded while we are connected: a unit the manager unloads when it stops is
        // announced anew (UnitNew) on its next start, not by a change of its ActiveState.
        let _ = conn.call_method(Some(MANAGER), &path, Some(UNIT_IFACE), "Ref", &()).await;
        let rule = MatchRule::builder()
            .msg_type(Type::Signal)
            .interface(PROPERTIES_IFACE)?
            .member("PropertiesChanged")?
            .path(path.clone())?
            .build();
        // Listening before subscribing, and asking the state after: no change falls between.
        let mut messages = MessageStream::for_match_rule(rule, &conn, None).await?;
        conn.call_method(Some(MANAGER), MANAGER_PATH, Some(MANAGER_IFACE), "Subscribe", &()).await?;
        let current = active_state(&conn, &path).await?;
        let (tx, changes) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            // The connection lives as long as this task.
            let _conn = conn;
            while let Some(Ok(message)) = messages.next().await {
                let Ok((interface, changed, _)) = message.body().deserialize::<(String, HashMap<String, OwnedValue>, Vec<String>)>() else {
                    continue;
                };
                if interface != UNIT_IFACE {
                    continue;
                }
                if let Some(state) = changed.get("ActiveState").and_then(|v| String::try_from(v.clone()).ok())
                    && tx.send(state).is_err()
                {
                    break;
                }
            }
        });
        Ok(StateChanges { socket, current, changes })
    }
}

async fn active_state(conn: &Connection, path: &OwnedObjectPath) -> zbus::Result<String> {
    let value: OwnedValue =
        conn.call_method(Some(MANAGER), path, Some(PROPERTIES_IFACE), "Get", &(UNIT_IFACE, "ActiveState")).await?.body().deserialize()?;
    String::try_from(value).map_err(zbus::Error::Variant)
}
