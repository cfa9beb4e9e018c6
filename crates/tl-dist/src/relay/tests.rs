use super::*;
use std::sync::mpsc::channel;

#[test]
fn frames_round_trip() {
    let frames = [
        Frame::Hello(7),
        Frame::NcclId(Box::new([9u8; 128])),
        Frame::Reduce(vec![1.5, -2.25, f64::MAX]),
        Frame::Sum(Vec::new()),
    ];
    let mut buf = Vec::new();
    for f in &frames {
        f.write(&mut buf).unwrap();
    }
    let mut r = &buf[..];
    for f in &frames {
        assert_eq!(&Frame::read(&mut r).unwrap(), f);
    }
    let e = Frame::read(&mut r).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof);
    let e = Frame::read(&mut &[9u8, 0, 0, 0, 0, 0, 0, 0, 0][..]).unwrap_err();
    assert!(e.to_string().contains("not part of the protocol"), "{e}");
}

/// A coordinator with `world` connected workers: (the workers' exchanges, the coordinator,
/// the event receiver).
fn setup(world: usize, timeout: Duration) -> (Vec<RelayExchange>, Coordinator, Receiver<Event>) {
    let (tx, rx) = channel();
    let mut workers = Vec::new();
    let mut writers = Vec::new();
    for rank in 0..world {
        let (a, b) = UnixStream::pair().unwrap();
        let reader = b.try_clone().unwrap();
        let tx = tx.clone();
        std::thread::spawn(move || read_frames(rank, reader, tx));
        writers.push(b);
        workers.push(RelayExchange::new(a, rank, world, timeout));
    }
    (workers, Coordinator::new(writers, timeout), rx)
}

#[test]
fn sums_arrive_in_rank_order_and_equal_on_every_rank() {
    let (workers, mut coord, rx) = setup(3, Duration::from_secs(10));
    let handles: Vec<_> = workers
        .into_iter()
        .map(|mut w| {
            std::thread::spawn(move || {
                let r = w.rank() as f64;
                let a = w.sum(vec![r, 1e16 * (r - 1.0), 0.1]).unwrap();
                let b = w.sum(vec![r * r]).unwrap();
                (a, b)
            })
        })
        .collect();
    while coord.rounds < 2 {
        coord.pump(&rx, Duration::from_millis(50)).unwrap();
    }
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    // Added in rank order: (-1e16 + 0) + 1e16 = 0, then + 0.1s.
    let want_a = vec![3.0, (-1e16 + 0.0) + 1e16, 0.1 + 0.1 + 0.1];
    for (a, b) in &results {
        assert_eq!(a, &want_a);
        assert_eq!(b, &vec![5.0]);
    }
}

#[test]
fn a_rank_that_never_arrives_times_out_naming_it() {
    let (mut workers, mut coord, rx) = setup(2, Duration::from_millis(200));
    let w0 = workers.remove(0);
    let h = std::thread::spawn(move || {
        let mut w0 = w0;
        w0.sum(vec![1.0])
    });
    let err = loop {
        if let Err(e) = coord.pump(&rx, Duration::from_millis(20)) {
            break e;
        }
    };
    assert!(
        matches!(err, ReduceError::Timeout { rank: 1, .. }),
        "{err:?}"
    );
    // The waiting worker times out on its own too.
    let e = h.join().unwrap().unwrap_err();
    assert!(matches!(e, ReduceError::Timeout { rank: 0, .. }), "{e:?}");
    drop(workers);
}

#[test]
fn a_rank_that_disconnects_mid_exchange_is_named() {
    let (mut workers, mut coord, rx) = setup(2, Duration::from_secs(10));
    let w1 = workers.pop().unwrap();
    let mut w0 = workers.pop().unwrap();
    let h = std::thread::spawn(move || w0.sum(vec![1.0]));
    // Wait until rank 0's bucket is queued, then rank 1 goes away.
    while coord.pending[0].is_empty() {
        coord.pump(&rx, Duration::from_millis(20)).unwrap();
    }
    drop(w1);
    let err = loop {
        if let Err(e) = coord.pump(&rx, Duration::from_millis(20)) {
            break e;
        }
    };
    assert!(matches!(err, ReduceError::Lost { rank: 1, .. }), "{err:?}");
    assert!(err.to_string().contains("rank 1"), "{err}");
    coord.shutdown();
    let e = h.join().unwrap().unwrap_err();
    assert!(e.to_string().contains("another rank has stopped"), "{e}");
}
