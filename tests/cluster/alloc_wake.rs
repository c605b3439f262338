//! Blocking `GetAllocs` through a real agent: a parked call returns when an allocation lands on
//! its node, and a call whose node nothing touched stays parked until its own deadline.

use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::Duration;

use engine::client_proto::{ClientRequest, ClientResponse};
use glommio::{LocalExecutorBuilder, Placement};
use net::client::sim::SimNodeSpec;
use net::client::ClientConn;
use sched::structs::{Node, Resources};

use crate::harness::{service_job, Agent};

fn node(id: &str, cpu_mhz: u64) -> Node {
    let mut node = SimNodeSpec::default().node(0);
    node.id = id.into();
    node.name = format!("wake-{cpu_mhz}");
    node.secret_id = format!("{id}-secret");
    node.resources = Resources {
        cpu_mhz,
        memory_mb: 4096,
        memory_max_mb: 0,
        disk_mb: 10_000,
    };
    node
}

/// What one parked call came back with.
#[derive(Debug)]
struct Answer {
    node: String,
    allocs: usize,
    index: u64,
    min_index: u64,
}

/// Registers both nodes, reads each one's index, then parks one call per node with the given
/// wait; reports "parked" once both are sent, then each answer as it arrives.
fn park_calls(
    addr: SocketAddr,
    nodes: Vec<(Node, u64)>,
    parked: mpsc::Sender<()>,
    answers: mpsc::Sender<Answer>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        LocalExecutorBuilder::new(Placement::Unbound)
            .io_memory(512 << 10)
            .name("alloc-wake-client")
            .spawn(move || async move {
                let conn = ClientConn::connect(addr).await.expect("connect");
                let mut calls = Vec::new();
                for (node, _) in &nodes {
                    let reply = conn
                        .call(ClientRequest::Register { node: node.clone() })
                        .await
                        .expect("register");
                    assert!(
                        matches!(reply, ClientResponse::Registered { .. }),
                        "register {}: {reply:?}",
                        node.id
                    );
                }
                for (node, wait_ms) in nodes {
                    let first = conn
                        .call(ClientRequest::GetAllocs {
                            node_id: node.id.clone(),
                            secret_id: node.secret_id.clone(),
                            min_index: 0,
                            max_wait_ms: 0,
                        })
                        .await
                        .expect("first GetAllocs");
                    let ClientResponse::Allocs { index, .. } = first else {
                        panic!("first GetAllocs of {}: {first:?}", node.id);
                    };
                    let (conn, answers) = (conn.clone(), answers.clone());
                    calls.push(glommio::spawn_local(async move {
                        let reply = conn
                            .call(ClientRequest::GetAllocs {
                                node_id: node.id.clone(),
                                secret_id: node.secret_id.clone(),
                                min_index: index,
                                max_wait_ms: wait_ms,
                            })
                            .await
                            .expect("parked GetAllocs");
                        let ClientResponse::Allocs { index: at, allocs } = reply else {
                            panic!("parked GetAllocs of {}: {reply:?}", node.id);
                        };
                        let _ = answers.send(Answer {
                            node: node.id.clone(),
                            allocs: allocs.len(),
                            index: at,
                            min_index: index,
                        });
                    }));
                }
                // Both requests are on the wire once their tasks have run once.
                glommio::timer::sleep(Duration::from_millis(200)).await;
                let _ = parked.send(());
                for call in calls {
                    call.await;
                }
            })
            .expect("spawn client executor")
            .join()
            .expect("client executor");
    })
}

#[test]
fn a_parked_get_allocs_wakes_for_its_own_node_only() {
    let agent = Agent::start(0, "server {\n  min_heartbeat_ttl = \"30s\"\n}\n");
    let addr: SocketAddr = ([127, 0, 0, 1], agent.rpc).into();
    let roomy = node("9a7e0000-0000-4000-8000-0000000000a1", 4000);
    // Too small for the job: nothing can be placed on it.
    let cramped = node("9a7e0000-0000-4000-8000-0000000000b2", 50);
    let (parked_tx, parked_rx) = mpsc::channel();
    let (answers_tx, answers_rx) = mpsc::channel();
    let client = park_calls(
        addr,
        vec![(roomy.clone(), 60_000), (cramped.clone(), 3_000)],
        parked_tx,
        answers_tx,
    );
    parked_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("both calls parked");

    agent.run_hcl(&service_job("wake", 1, 500, 256));
    let mut answers = Vec::new();
    for _ in 0..2 {
        answers.push(
            answers_rx
                .recv_timeout(Duration::from_secs(30))
                .expect("an answer well before the roomy node's 60 s deadline"),
        );
    }
    client.join().expect("client thread");

    let roomy_answer = answers.iter().find(|a| a.node == roomy.id).expect("roomy");
    assert_eq!(roomy_answer.allocs, 1, "{answers:?}");
    assert!(roomy_answer.index > roomy_answer.min_index, "{answers:?}");
    let cramped_answer = answers
        .iter()
        .find(|a| a.node == cramped.id)
        .expect("cramped");
    assert_eq!(cramped_answer.allocs, 0, "{answers:?}");
    assert_eq!(
        cramped_answer.index, cramped_answer.min_index,
        "the cramped node's call ends at its deadline with nothing new: {answers:?}"
    );
}
