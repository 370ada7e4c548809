//! Starts real PostgreSQL clusters (installed by `cargo xtask test`).

use brygga_harness::postgres::{PgCluster, fresh_database_url, pg_bin_dir};
use std::net::TcpStream;
use std::process::Command;
use std::time::Instant;

fn select_one(url: &str) -> String {
    let out =
        Command::new(pg_bin_dir().join("psql")).args([url, "-XAtc", "select current_database()"]).output().unwrap();
    assert!(out.status.success(), "psql {url}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn port_of(url: &str) -> u16 {
    url.rsplit_once(':').unwrap().1.split('/').next().unwrap().parse().unwrap()
}

#[test]
fn fresh_database_urls_are_distinct_live_databases() {
    let started = Instant::now();
    let first = fresh_database_url();
    eprintln!("shared cluster and first database ready in {:?}", started.elapsed());
    let second = fresh_database_url();
    assert_ne!(first, second);
    assert!(first.starts_with("postgres://postgres@127.0.0.1:"));
    assert_eq!(port_of(&first), port_of(&second), "one cluster per test process");
    TcpStream::connect(("127.0.0.1", port_of(&first))).unwrap();
    let (db1, db2) = (select_one(&first), select_one(&second));
    assert_ne!(db1, db2);
    assert!(first.ends_with(&db1) && second.ends_with(&db2));
}

#[test]
fn own_cluster_stops_on_drop() {
    let started = Instant::now();
    let cluster = PgCluster::start().unwrap();
    eprintln!("own cluster ready in {:?}", started.elapsed());
    let url = cluster.create_database().unwrap();
    select_one(&url);
    let (port, dir) = (cluster.port(), cluster.dir().to_path_buf());
    drop(cluster);
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
    assert!(!dir.exists());
}
