//! End-to-end: the `--html` audit page is self-contained, escapes what came from mail, and
//! loads in a real browser (headless Chromium) without errors. Without Chromium the browser
//! part says so and is skipped; under CI (CI=true) a missing Chromium is a failure.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

fn chromium() -> Option<PathBuf> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// Flags for a headless Chromium in a closed sandbox, with a fresh profile in `profile`.
fn browser(bin: &Path, profile: &Path) -> Command {
    let mut c = Command::new(bin);
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--enable-logging=stderr",
        "--v=0",
    ]);
    c.arg(format!("--user-data-dir={}", profile.display()));
    c
}

#[test]
fn audit_page_is_self_contained_and_loads_in_chromium() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mbox = sample("shared-pop.mbox");
    let page = tmp.path().join("audit.html");
    let out = tmp.path().join("out");
    Run::split(&mbox)
        .office()
        .out(&out)
        .args(&["--html", page.to_str().expect("utf8")])
        .ok();
    let html = fs::read_to_string(&page).expect("page");
    // Self-contained: nothing to fetch, and a policy that forbids fetching.
    for banned in [
        "src=",
        "href=",
        "http://",
        "https://",
        "@import",
        "fetch(",
        "XMLHttpRequest",
    ] {
        assert!(!html.contains(banned), "the page holds {banned:?}");
    }
    assert!(html.contains("content=\"default-src 'none';"));
    // What came from mail is escaped: in the data, as JSON escapes that cannot end the
    // script element.
    assert!(html.contains("Lottery \\u003cwinner@lottery.example.biz\\u003e"));
    assert!(!html.contains("<winner@"));
    // The parts the admin hands over.
    let expected = expected();
    let review = expected
        .iter()
        .filter(|e| e.confidence != "high" && e.folders != ["_duplicates"])
        .count();
    assert!(html.contains(&format!(
        "unassigned, low- and medium-confidence messages ({review})"
    )));
    assert!(html.contains("every message is accounted for"));
    assert!(html.contains("Trusted relays (learned): example.net"));
    assert!(html.contains("--html"));
    for user in ["alice", "bob", "carol", "dave", "_unassigned"] {
        assert!(
            html.contains(&format!("<tr><th>{user}</th>")),
            "{user} has no bar"
        );
    }

    let Some(bin) = chromium() else {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("Chromium is not installed: .ci/run must install chromium");
        }
        skipped(
            "Chromium is not installed (apt-get install chromium); the page was not opened in a browser",
        );
        return;
    };
    let url = format!("file://{}", page.display());
    let dom = browser(&bin, &tmp.path().join("profile"))
        .arg("--dump-dom")
        .arg(&url)
        .output()
        .expect("chromium");
    assert!(
        dom.status.success(),
        "{}",
        String::from_utf8_lossy(&dom.stderr)
    );
    let rendered = String::from_utf8_lossy(&dom.stdout);
    assert!(
        rendered.contains("every message is accounted for"),
        "the browser did not render the page"
    );
    assert_eq!(
        rendered.matches("<tr class=\"").count(),
        review,
        "review rows in the rendered DOM"
    );
    // Mail text reaches the page as text only, also when the script draws it.
    assert!(rendered.contains("Lottery &lt;winner@lottery.example.biz&gt;"));
    let log = String::from_utf8_lossy(&dom.stderr);
    for sign in [
        "Uncaught",
        "Failed to load resource",
        "Refused to",
        "net::ERR_",
    ] {
        assert!(!log.contains(sign), "the browser reported {sign:?}:\n{log}");
    }
    let png = tmp.path().join("audit.png");
    let shot = browser(&bin, &tmp.path().join("profile2"))
        .arg("--window-size=1200,1600")
        .arg(format!("--screenshot={}", png.display()))
        .arg(&url)
        .output()
        .expect("chromium");
    assert!(shot.status.success());
    let bytes = fs::read(&png).expect("screenshot");
    assert!(
        bytes.starts_with(b"\x89PNG") && bytes.len() > 20_000,
        "screenshot is empty"
    );
}

fn chromedriver() -> Option<PathBuf> {
    ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// chromedriver on 127.0.0.1; stopped by its PID when dropped, pass or fail.
struct Driver(std::process::Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A WebDriver client (Python's standard library only): opens the page, for each
/// `[key, user, filter text]` types the text into the filter and picks the user in the
/// row of that key, presses "Download corrections", and prints the downloaded file.
const REVIEWER: &str = r#"
import json, os, sys, time, urllib.request
port, url, dl, picks = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
base = 'http://127.0.0.1:' + port
E = 'element-6066-11e4-a52e-4f735466cecf'
def call(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={'Content-Type': 'application/json'})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())['value']
args = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync',
        '--user-data-dir=' + dl + '-profile']
caps = {'capabilities': {'alwaysMatch': {'browserName': 'chrome', 'goog:chromeOptions': {
    'binary': sys.argv[5], 'args': args,
    'prefs': {'download.default_directory': dl, 'download.prompt_for_download': False}}}}}
s = '/session/' + call('POST', '/session', caps)['sessionId']
try:
    call('POST', s + '/chromium/send_command',
         {'cmd': 'Page.setDownloadBehavior', 'params': {'behavior': 'allow', 'downloadPath': dl}})
    call('POST', s + '/url', {'url': url})
    def find(css):
        v = call('POST', s + '/element', {'using': 'css selector', 'value': css})
        if E not in v:
            sys.exit('no %s: %r' % (css, v))
        return v[E]
    for key, user, text in picks:
        box = find('#f-text')
        call('POST', s + '/element/' + box + '/clear', {})
        call('POST', s + '/element/' + box + '/value', {'text': text})
        rows = call('POST', s + '/elements', {'using': 'css selector', 'value': '#rows tr'})
        if len(rows) != 1:
            sys.exit('filter %r shows %d rows' % (text, len(rows)))
        opt = find('tr[data-key="%s"] select option[value="%s"]' % (key, user))
        call('POST', s + '/element/' + opt + '/click', {})
    call('POST', s + '/element/' + find('#download') + '/click', {})
    path = os.path.join(dl, 'corrections.csv')
    # The file can appear before Chromium has written it (seen once, empty, on a busy
    # machine): read it once it holds a whole last line and two looks agree.
    deadline = time.time() + 30
    seen = None
    while time.time() < deadline:
        now = open(path).read() if os.path.exists(path) else None
        if now and now.endswith('\n') and now == seen:
            break
        seen = now
        time.sleep(0.2)
    if now is None:
        sys.exit('no %s after 30 s' % path)
    print(now, end='')
finally:
    call('DELETE', s)
"#;

#[test]
fn a_reviewer_reassigns_two_rows_in_chromium_and_the_downloaded_csv_moves_them() {
    let (Some(bin), Some(driver)) = (chromium(), chromedriver()) else {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!(
                "Chromium or chromedriver is not installed: .ci/run must install chromium and chromium-driver"
            );
        }
        skipped(
            "Chromium or chromedriver is not installed (apt-get install chromium chromium-driver); the review page was not driven",
        );
        return;
    };
    let tmp = tempfile::tempdir().expect("tmp");
    let mbox = sample("shared-pop.mbox");
    let out = tmp.path().join("out");
    let page = tmp.path().join("audit.html");
    Run::split(&mbox)
        .office()
        .out(&out)
        .args(&["--html", page.to_str().expect("utf8")])
        .ok();

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let _driver = Driver(
        Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("chromedriver"),
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "chromedriver did not listen"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let review = |page: &Path, dl: &str, picks: serde_json::Value| -> String {
        let res = Command::new("python3")
            .args(["-c", REVIEWER, &port.to_string()])
            .arg(format!("file://{}", page.display()))
            .arg(tmp.path().join(dl))
            .arg(picks.to_string())
            .arg(&bin)
            .output()
            .expect("python3");
        assert!(
            res.status.success(),
            "{}",
            String::from_utf8_lossy(&res.stderr)
        );
        String::from_utf8_lossy(&res.stdout).into_owned()
    };

    // The unassigned lottery mail was carol's; the low-confidence shop mail is dave's.
    let csv = review(
        &page,
        "dl1",
        serde_json::json!([
            ["<s08@lottery.example.biz>", "carol", "lottery"],
            ["<s11@shop.example.org>", "dave", "shop.example"]
        ]),
    );
    assert_eq!(
        csv,
        "message,users\n<s08@lottery.example.biz>,carol\n<s11@shop.example.org>,dave\n"
    );
    let file = tmp.path().join("corrections.csv");
    fs::write(&file, &csv).expect("write");
    let page2 = tmp.path().join("audit2.html");
    let said = Run::split(&mbox)
        .office()
        .out(&out)
        .args(&[
            "--corrections",
            file.to_str().expect("utf8"),
            "--html",
            page2.to_str().expect("utf8"),
        ])
        .ok();
    assert!(
        said.contains("2 moved to their folder, 1 removed"),
        "{said}"
    );
    let tree = read_tree(&out);
    let holders = |id: &str| -> Vec<String> {
        tree.iter()
            .filter(|(_, files)| {
                files
                    .iter()
                    .any(|d| d.header("Message-ID").as_deref() == Some(id))
            })
            .map(|(f, _)| f.clone())
            .collect()
    };
    assert_eq!(holders("<s08@lottery.example.biz>"), ["carol"]);
    assert_eq!(holders("<s11@shop.example.org>"), ["dave"]);

    // The next page holds those corrections: one more choice, and the download has all three.
    let csv = review(
        &page2,
        "dl2",
        serde_json::json!([["<s14@else.example.org>", "bob", "else.example"]]),
    );
    let mut lines: Vec<&str> = csv.lines().collect();
    lines.sort_unstable();
    assert_eq!(
        lines,
        [
            "<s08@lottery.example.biz>,carol",
            "<s11@shop.example.org>,dave",
            "<s14@else.example.org>,bob",
            "message,users"
        ]
    );
}

#[test]
fn a_page_of_100000_rows_draws_one_page_in_chromium() {
    use popsplit::decide::Confidence;
    use popsplit::output::report::{Audit, REVIEW_ROWS, ReviewRow, Summary};
    let rows = REVIEW_ROWS;
    let audit = Audit {
        review: (0..rows)
            .map(|i| ReviewRow {
                key: format!("<m{i}@example.org>"),
                arrival: Some(1_500_000_000 + i as i64),
                from: format!("Sender {i} <s{i}@example.org>"),
                subject: format!("Subject number {i}"),
                folders: vec![if i % 3 == 0 { "_unassigned" } else { "alice" }.to_string()],
                confidence: if i % 3 == 0 {
                    Confidence::None
                } else {
                    Confidence::Low
                },
                why: "To: alice@example.com".into(),
                source: "box.mbox".into(),
                index: i + 1,
                evidence: vec![format!("To: alice@example.com (decisive)"); 2],
                list: None,
                body: "Hello,\nthe quarterly figures are attached.".into(),
            })
            .collect(),
        review_total: rows as u64,
        ..Audit::default()
    };
    let dir = popsplit::decide::directory::Directory::open(&["example.com".to_string()]);
    let html = popsplit::output::html::render(
        &Summary::default(),
        &audit,
        &popsplit::decide::profile::Profile::default(),
        &dir,
        "popsplit split box.mbox",
        None,
    );
    let tmp = tempfile::tempdir().expect("tmp");
    let page = tmp.path().join("big.html");
    fs::write(&page, &html).expect("write");
    let Some(bin) = chromium() else {
        skipped("Chromium is not installed; the large page was not opened");
        return;
    };
    let started = std::time::Instant::now();
    let dom = browser(&bin, &tmp.path().join("profile"))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium");
    let took = started.elapsed();
    println!("100,000 rows: the browser took {took:?}");
    assert!(dom.status.success());
    let rendered = String::from_utf8_lossy(&dom.stdout);
    assert_eq!(
        rendered.matches("<tr class=\"").count(),
        100,
        "one page of rows"
    );
    assert!(rendered.contains(&format!("rows 1–100 of {rows}")), "pager");
    // Loading, parsing 100,000 rows and drawing a page, browser start included.
    assert!(took.as_secs() < 30, "took {took:?}");
}
