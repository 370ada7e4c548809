//! The one address in front of several bridge processes, as a load
//! balancer would be: each connection goes to the first process that
//! accepts it, so the homeserver reaches whichever is alive.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};

/// A TCP front that fails over between backends in order.
pub struct Front {
    port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl Front {
    /// Listens on a free port and forwards to `backends` (first alive wins).
    pub async fn start(backends: Vec<SocketAddr>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the front");
        let port = listener.local_addr().expect("front address").port();
        let backends = Arc::new(backends);
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let backends = backends.clone();
                tokio::spawn(async move {
                    for backend in backends.iter() {
                        if let Ok(server) = TcpStream::connect(backend).await {
                            relay(client, server).await;
                            return;
                        }
                    }
                    // Nobody is up: the client sees the connection close.
                });
            }
        });
        Self { port, task }
    }

    /// The front's URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

async fn relay(mut client: TcpStream, mut server: TcpStream) {
    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
}

impl Drop for Front {
    fn drop(&mut self) {
        self.task.abort();
    }
}
