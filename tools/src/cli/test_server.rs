//! A tiny scripted HTTP server on 127.0.0.1 for exercising commands end to end in tests.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// One request the server received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// Path including the query string.
    pub target: String,
    pub body: String,
}

struct Route {
    method: &'static str,
    path: &'static str,
    /// Answers given in order; the last one repeats.
    answers: VecDeque<(u16, String)>,
}

/// One route: method, exact path, and the (status, body) answers given in order.
pub type RouteSpec<'a> = (&'static str, &'static str, Vec<(u16, &'a str)>);

/// Scripted server: routes match on method and exact path (query string ignored).
pub struct TestServer {
    pub address: String,
    requests: Arc<Mutex<Vec<Recorded>>>,
}

impl TestServer {
    /// Starts a server answering `routes` of (method, path, [(status, body)...]).
    pub fn start(routes: Vec<RouteSpec<'_>>) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind test server");
        let address = format!("http://{}", listener.local_addr().expect("local addr"));
        let routes: Vec<Route> = routes
            .into_iter()
            .map(|(method, path, answers)| Route {
                method,
                path,
                answers: answers
                    .into_iter()
                    .map(|(s, b)| (s, b.to_string()))
                    .collect(),
            })
            .collect();
        let routes = Arc::new(Mutex::new(routes));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let recorded = Arc::clone(&requests);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                serve(stream, &routes, &recorded);
            }
        });
        TestServer { address, requests }
    }

    /// Returns every request received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().expect("requests lock").clone()
    }
}

fn serve(stream: TcpStream, routes: &Mutex<Vec<Route>>, recorded: &Mutex<Vec<Recorded>>) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("").to_string();
    let mut content_length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                content_length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0u8; content_length];
    let _ = reader.read_exact(&mut body);
    let path = target.split('?').next().unwrap_or("").to_string();
    recorded.lock().expect("requests lock").push(Recorded {
        method: method.clone(),
        target: target.clone(),
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    let (status, answer) = {
        let mut routes = routes.lock().expect("routes lock");
        match routes
            .iter_mut()
            .find(|r| r.method == method && r.path == path)
        {
            Some(route) if route.answers.len() > 1 => route.answers.pop_front().expect("answer"),
            Some(route) => route.answers.front().cloned().expect("answer"),
            None => (404, String::new()),
        }
    };
    let content_type = if status == 200 {
        "application/json"
    } else {
        "text/plain"
    };
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{answer}",
        answer.len()
    );
}
