use std::path::{Path, PathBuf};
use std::time::Duration;

use super::FileWatch;

/// A fresh directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("switchyard-watch-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Self(dir)
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn fast(path: &Path) -> FileWatch {
    FileWatch::with_timing(path, Duration::from_millis(10), Duration::from_millis(10))
}

/// A scratch directory holding `switchyard.yaml` (`a: 1`), and a fast watch on that file.
fn watched(name: &str) -> (Scratch, PathBuf, FileWatch) {
    let dir = Scratch::new(name);
    let path = dir.join("switchyard.yaml");
    std::fs::write(&path, "a: 1\n").expect("write");
    let watch = fast(&path);
    (dir, path, watch)
}

/// Whether the watch reports a change within half a second.
async fn sees_change(watch: &mut FileWatch) -> bool {
    tokio::time::timeout(Duration::from_millis(500), watch.changed())
        .await
        .is_ok()
}

#[tokio::test]
async fn an_edit_in_place_is_seen_once() {
    let (_dir, path, mut watch) = watched("edit");
    assert!(!sees_change(&mut watch).await, "nothing changed yet");
    // Same length, other bytes.
    std::fs::write(&path, "a: 2\n").expect("write");
    assert!(sees_change(&mut watch).await);
    assert!(!sees_change(&mut watch).await, "one change, one report");
}

#[tokio::test]
async fn a_replacement_by_rename_is_seen() {
    let (dir, path, mut watch) = watched("rename");
    std::fs::write(dir.join("new.yaml"), "a: 2\n").expect("write");
    std::fs::rename(dir.join("new.yaml"), &path).expect("rename");
    assert!(sees_change(&mut watch).await);
}

/// Kubernetes mounts a ConfigMap as a symlink into a `..data` link that it retargets.
#[cfg(unix)]
#[tokio::test]
async fn a_retargeted_symlink_is_seen() {
    let dir = Scratch::new("symlink");
    std::fs::create_dir_all(dir.join("v1")).expect("dir");
    std::fs::create_dir_all(dir.join("v2")).expect("dir");
    std::fs::write(dir.join("v1/switchyard.yaml"), "a: 1\n").expect("write");
    std::fs::write(dir.join("v2/switchyard.yaml"), "a: 2\n").expect("write");
    std::os::unix::fs::symlink("v1", dir.join("..data")).expect("symlink");
    std::os::unix::fs::symlink("..data/switchyard.yaml", dir.join("switchyard.yaml"))
        .expect("symlink");
    let mut watch = fast(&dir.join("switchyard.yaml"));
    std::os::unix::fs::symlink("v2", dir.join("..data_tmp")).expect("symlink");
    std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).expect("swap");
    assert!(sees_change(&mut watch).await);
}

/// A write that leaves the bytes as they were (`touch`, the same file copied over) is no
/// reason to reload.
#[tokio::test]
async fn the_same_bytes_written_again_are_not_a_change() {
    let (dir, path, mut watch) = watched("same");
    std::fs::write(dir.join("copy.yaml"), "a: 1\n").expect("write");
    std::fs::rename(dir.join("copy.yaml"), &path).expect("rename");
    std::fs::write(&path, "a: 1\n").expect("write");
    assert!(!sees_change(&mut watch).await);
}

/// Files written beside the config (a log, a database) are none of its business.
#[tokio::test]
async fn other_files_in_the_directory_are_not_changes() {
    let (dir, _path, mut watch) = watched("neighbours");
    let writer = std::thread::spawn({
        let log = dir.join("switchyard.log");
        move || {
            for n in 0..40 {
                std::fs::write(&log, format!("line {n}\n")).expect("write");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    });
    assert!(!sees_change(&mut watch).await);
    writer.join().expect("writer");
}

/// A file that goes away (mid-replacement) is waited for, then read when it is back.
#[tokio::test]
async fn a_file_that_vanishes_is_waited_for() {
    let (_dir, path, mut watch) = watched("vanish");
    std::fs::remove_file(&path).expect("remove");
    assert!(
        !sees_change(&mut watch).await,
        "a missing file is not a config"
    );
    std::fs::write(&path, "a: 22\n").expect("write");
    assert!(sees_change(&mut watch).await);
}

#[tokio::test]
async fn marking_seen_absorbs_a_change_already_acted_on() {
    let (_dir, path, mut watch) = watched("mark");
    std::fs::write(&path, "a: 10\n").expect("write");
    watch.mark_seen();
    assert!(!sees_change(&mut watch).await);
}
