use super::*;

/// A prepared program weighing `bytes` (no entry points: only the cache's bookkeeping is
/// under test).
fn weighing(hash: u8, bytes: usize) -> Arc<Prepared> {
    Arc::new(Prepared {
        hash: [hash; 32],
        command: None,
        http: None,
        handler: None,
        riscv: None,
        bytes,
    })
}

async fn put(cache: &ComponentCache, hash: u8, bytes: usize) {
    cache
        .get_or_init([hash; 32], || async move { Ok(weighing(hash, bytes)) })
        .await
        .expect("prepared");
}

fn kept(cache: &ComponentCache) -> Vec<u8> {
    let mut kept: Vec<u8> = cache.lock().iter().map(|(hash, _)| hash[0]).collect();
    kept.sort_unstable();
    kept
}

#[tokio::test]
async fn the_memory_cache_keeps_to_its_byte_budget_least_recently_used_first() {
    let cache = ComponentCache::new(128, 100, None, "component");
    put(&cache, 1, 40).await;
    put(&cache, 2, 40).await;
    assert_eq!(kept(&cache), [1, 2]);
    // 1 is used again, so 2 is the least recently used when 3 needs room.
    assert!(cache.cached(&[1; 32]).is_some());
    put(&cache, 3, 40).await;
    assert_eq!(kept(&cache), [1, 3]);
    // One heavier than the whole budget is still kept (alone): it was just asked for.
    put(&cache, 4, 500).await;
    assert_eq!(kept(&cache), [4]);
    // Until the next one comes: then it is over the budget and goes.
    put(&cache, 5, 0).await;
    assert_eq!(kept(&cache), [5]);
    // Weightless entries are bounded by the entry count only.
    for hash in 6..20 {
        put(&cache, hash, 0).await;
    }
    assert_eq!(kept(&cache).len(), 15);
}
