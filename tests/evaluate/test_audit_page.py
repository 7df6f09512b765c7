"""The audit page: hits marked at the threshold, untrusted text inert, and its filters working in a real browser.

The browser tests drive Debian's Chromium (``apt-get install chromium``) through Playwright for Python with
``executable_path``: Playwright talks to the installed browser over its own pipe, so nothing is downloaded (no
``playwright install``), and it clicks the page's controls the way a reader does, which ``chromium --dump-dom``
cannot. They skip where either is missing."""

from __future__ import annotations

import html
import re
import shutil
from concurrent.futures import ThreadPoolExecutor

import pytest

from lightning_review.evaluate.audit_page import (PairRecord, UnmatchedPoint, audit_page, records_from_result,
                                                  write_audit_page)

NASTY = ('</textarea></title><script>window.pwned = 1</script><img src=x onerror="window.pwned = 2">'
         '"><svg onload="window.pwned = 3">')


def sample_pairs() -> tuple[list[PairRecord], list[UnmatchedPoint]]:
    pairs = [
        PairRecord("p1", "ours", "embedding", "The ablation on depth is missing.", "No depth ablation is given.",
                   8.4, rationale="cosine 0.770"),
        PairRecord("p1", "ours", "embedding", "Baselines are weak.", "Compare to stronger baselines.", 6.5,
                   rationale="cosine 0.500"),
        PairRecord("p1", "gpt-4", "gpt-4-judge", "Proofs are sketchy.", "Theorem 2's proof has a gap.", 9.0,
                   reverse_score=6.0, rationale="Both question the proof."),
        PairRecord("p1", "gpt-4", "gpt-4-judge", "Writing is unclear.", "Section 3 is hard to follow.", 8.0,
                   reverse_score=8.0, rationale="Same clarity concern."),
        PairRecord("p2", "ours", "embedding", "No error bars.", "Results lack variance over seeds.", 7.2,
                   rationale="cosine 0.570"),
    ]
    unmatched = [UnmatchedPoint("p2", "ours", "embedding", "human", "Related work misses prior art.")]
    return pairs, unmatched


def test_hits_are_marked_at_the_threshold_with_both_directions_for_two_way_judges():
    pairs, unmatched = sample_pairs()
    page = audit_page(pairs, unmatched, threshold=7.0)
    hit_rows = re.findall(r'<tr class="pair hit"[^>]*><td>([^<]*)</td>', page)
    # 8.4 and 7.2 (one direction) and 8.0/8.0 are hits; 9.0 forward but 6.0 back is not, nor 6.5
    assert sorted(hit_rows) == ["No error bars.", "The ablation on depth is missing.", "Writing is unclear."]
    assert "Both question the proof." in page and "cosine 0.770" in page
    assert "Related work misses prior art." in page
    assert len(re.findall(r'<tr class="pair hit"', audit_page(pairs, threshold=6.0))) == 5


def test_review_text_and_names_are_escaped_everywhere():
    pair = PairRecord(NASTY, NASTY, NASTY, NASTY, NASTY, 8.0, reverse_score=8.0, rationale=NASTY)
    page = audit_page([pair], [UnmatchedPoint(NASTY, NASTY, NASTY, "system", NASTY)])
    assert page.count("<script") == 1  # the page's own
    for raw in ("<img", "<svg", "</textarea>", 'onerror="'):
        assert raw not in page
    assert page.count("</title>") == 1
    assert html.escape(NASTY, quote=True) in page


def test_records_from_the_evaluators_pairs_keep_the_unmatched_points():
    result = {"pairs": {"gpt-4-judge": {"ours": {"p1": {
        "system_points": ["S0", "S1", "S2"], "human_points": ["H0", "H1", "H2"], "human_point_review": [0, 1, 1],
        "matches": [{"system_point": 2, "human_point": 0, "similarity": 8.0, "similarity_backward": 6.0,
                     "rationale": "same", "rationale_backward": "related", "hit": False},
                    {"system_point": 0, "human_point": 2, "similarity": None, "similarity_backward": 9.0,
                     "rationale": None, "rationale_backward": "only one way", "hit": False}]}}}}}
    pairs, unmatched = records_from_result(result)
    assert pairs == [PairRecord("p1", "ours", "gpt-4-judge", "S2", "H0", 8.0, 6.0, "same", "related", 0),
                     PairRecord("p1", "ours", "gpt-4-judge", "S0", "H2", None, 9.0, None, "only one way", 1)]
    assert unmatched == [UnmatchedPoint("p1", "ours", "gpt-4-judge", "system", "S1"),
                         UnmatchedPoint("p1", "ours", "gpt-4-judge", "human", "H1", 1)]
    assert not any(p.hit(5) for p in pairs[1:])  # a pair matched one way only is never a hit
    page = audit_page(pairs, unmatched)
    assert "human review 2" in page and "back: related" in page


def test_an_unknown_side_is_refused():
    with pytest.raises(ValueError, match="side"):
        audit_page([], [UnmatchedPoint("p", "s", "j", "paper", "text")])  # type: ignore[arg-type]


def _browser():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    return sync_api, chromium


@pytest.fixture(scope="module")
def browser_page():
    sync_api, chromium = _browser()
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium)
        try:
            yield browser
        finally:
            browser.close()


def _open(browser, tmp_path, pairs, unmatched=(), threshold=7.0):
    path = write_audit_page(tmp_path / "audit.html", pairs, unmatched, threshold)
    page = browser.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.goto(path.as_uri())
    return page, errors


def _visible_system_points(page) -> list[str]:
    return sorted(page.locator("tr.pair:visible td:first-child").all_inner_texts())


def test_filters_hide_and_show_pairs_in_a_real_browser(browser_page, tmp_path):
    pairs, unmatched = sample_pairs()
    page, errors = _open(browser_page, tmp_path, pairs, unmatched)
    assert len(_visible_system_points(page)) == 5
    assert page.inner_text("#count-hits") == "3"

    page.select_option("#f-system", "gpt-4")
    assert _visible_system_points(page) == ["Proofs are sketchy.", "Writing is unclear."]
    assert not page.locator("section.paper[data-paper='p2']").is_visible()  # no gpt-4 review of p2 left
    page.select_option("#f-system", "")
    page.select_option("#f-judge", "embedding")
    assert len(_visible_system_points(page)) == 3

    page.select_option("#f-show", "hits")
    assert _visible_system_points(page) == ["No error bars.", "The ablation on depth is missing."]
    page.fill("#f-threshold", "8")  # the hits are recomputed from the scores, not fixed at the opening threshold
    assert _visible_system_points(page) == ["The ablation on depth is missing."]
    assert page.locator("tr.pair.hit").count() == 2  # 8.4 (embedding) and 8.0/8.0 (gpt-4 judge, hidden)
    page.fill("#f-threshold", "6.5")  # 6.5 is a hit; 9 one way and 6 back is not
    page.select_option("#f-judge", "")
    assert _visible_system_points(page) == ["Baselines are weak.", "No error bars.",
                                            "The ablation on depth is missing.", "Writing is unclear."]
    assert not page.get_by_text("Related work misses prior art.").is_visible()
    page.select_option("#f-show", "all")
    assert page.get_by_text("Related work misses prior art.").is_visible()
    assert page.inner_text("#count-pairs") == "5" and page.inner_text("#count-hits") == "4"
    assert errors == []


def test_untrusted_text_is_inert_in_a_real_browser(browser_page, tmp_path):
    pairs, _ = sample_pairs()
    nasty = PairRecord("p3", NASTY, NASTY, NASTY, "human point", 9.0, rationale=NASTY)
    page, errors = _open(browser_page, tmp_path, [*pairs, nasty])
    assert page.evaluate("typeof window.pwned") == "undefined"
    assert page.locator("img, svg, textarea").count() == 0
    assert page.locator("script").count() == 1
    assert page.locator("section.paper[data-paper='p3'] tr.pair td:first-child").inner_text() == NASTY
    page.select_option("#f-system", NASTY)  # a hostile system name still filters as plain text
    assert _visible_system_points(page) == [NASTY]
    assert page.evaluate("typeof window.pwned") == "undefined"
    assert errors == []


def test_the_evaluate_command_writes_the_page_of_its_pairs(browser_page, tmp_path, monkeypatch):
    """End to end: a chat judge (the local OpenAI-protocol server) judges a system, and audit.html beside report.md
    shows every pair of result.json with the judge's rationale, its hits at the primary threshold."""
    from lightning_review.evaluate.command import evaluate
    from tests.conftest import write_jsonl
    from tests.openai_server import API_KEY, FakeOpenAI

    human = write_jsonl(tmp_path / "human.jsonl", [
        {"id": f"p{k}", "title": "T", "paper": "A paper about graphs. " * 10,
         "reviews": [{"text": "The baselines are weak and old. The proof of Theorem 2 has a gap in its second step."},
                     {"text": "Stronger baselines are needed here. The writing of section 3 is unclear to me."}]}
        for k in range(2)])
    ours = write_jsonl(tmp_path / "ours.jsonl", [
        {"id": f"p{k}", "review": "The baselines are weak and old. <script>window.pwned = 1</script> is a point."}
        for k in range(2)])
    with FakeOpenAI() as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
        with ThreadPoolExecutor(1) as thread:  # its own event loop: Playwright's holds this thread's
            result = thread.submit(evaluate, str(human), {"ours": str(ours)}, judges=["openai:judge-model"],
                                   output_dir=str(tmp_path / "out"), resamples=100).result()
    matches = [m for per_system in result["pairs"]["judge-model"].values() for judged in per_system.values()
               for m in judged["matches"]]
    floor = [m for per_system in result["floor_pairs"]["judge-model"].values() for judged in per_system.values()
             for m in judged["matches"]]
    page = browser_page.new_page()
    page.goto((tmp_path / "out" / "audit.html").as_uri())
    assert page.locator("tr.pair").count() == len(matches) + len(floor) and matches and floor
    assert page.inner_text("#count-hits") == str(sum(m["hit"] for m in matches + floor))
    page.select_option("#f-part", "review")  # the reviews of their own paper: result.json's pairs
    assert page.locator("tr.pair:visible").count() == len(matches)
    assert page.inner_text("#count-hits") == str(sum(m["hit"] for m in matches))
    assert page.input_value("#f-threshold") == "7"  # the evaluation's primary threshold
    assert page.get_by_text("of the words are shared").first.is_visible()  # the judge's rationale
    page.select_option("#f-system", "ours")
    assert page.locator("tr.pair:visible").count() == sum(
        len(judged["matches"]) for judged in result["pairs"]["judge-model"]["ours"].values())
    assert page.evaluate("typeof window.pwned") == "undefined"


def test_a_two_way_judges_pair_matched_forward_only_is_no_hit_in_page_and_browser(browser_page, tmp_path):
    """The evaluator counts a chat judge's pair as a hit only when both directions reach the threshold; a pair it
    matched system -> human alone (no score back) is no hit on the page either, at any threshold."""
    result = {"pairs": {"gpt-4-judge": {"ours": {"p1": {
        "system_points": ["S0"], "human_points": ["H0"], "human_point_review": [0], "both_directions": True,
        "matches": [{"system_point": 0, "human_point": 0, "similarity": 9.0, "similarity_backward": None,
                     "rationale": "forward only", "rationale_backward": None, "hit": False}]}}}}}
    pairs, unmatched = records_from_result(result)
    assert pairs[0].both_directions and not pairs[0].hit(7) and not pairs[0].hit(5)
    assert '<tr class="pair hit"' not in audit_page(pairs, unmatched)
    page, errors = _open(browser_page, tmp_path, pairs, unmatched)
    page.fill("#f-threshold", "5")  # recomputed by the page's script
    assert page.inner_text("#count-hits") == "0" and page.locator("tr.pair.hit").count() == 0
    assert errors == []


def test_the_pages_script_marks_exactly_the_hits_of_the_python_rule(browser_page, tmp_path):
    """The script's hitAt is the twin of statistics.is_hit (the evaluator's rule): on every combination of a score,
    a score back and a one- or two-way judge, at thresholds on and between the scores, both mark the same rows."""
    from itertools import product

    from lightning_review.evaluate.statistics import is_hit

    combos = list(product((None, 6.0, 7.0, 8.5), (None, 6.0, 7.0, 9.0), (False, True)))
    pairs = [PairRecord("p1", "ours", "judge", f"pair {k}", "human point", score, reverse, both_directions=both)
             for k, (score, reverse, both) in enumerate(combos)]
    page, errors = _open(browser_page, tmp_path, pairs)
    for threshold in (5, 6, 6.5, 7, 8.5, 9, 9.5):
        expected = sorted(f"pair {k}" for k, (score, reverse, both) in enumerate(combos)
                          if is_hit(score, reverse, threshold, both or reverse is not None))
        page.fill("#f-threshold", str(threshold))
        assert sorted(page.locator("tr.pair.hit td:first-child").all_inner_texts()) == expected, threshold
        assert sorted(p.system_point for p in pairs if p.hit(threshold)) == expected
        assert 0 < len(expected) < len(pairs) or threshold > 8.5  # no score reaches 9
    assert errors == []


def test_the_shuffled_floor_is_on_the_page_labelled_and_filtered_apart(browser_page, tmp_path):
    """The floor's pairs reach the page from the evaluator's result, each table labelled as the floor with the other
    paper named, so a reader sees which false hits make the floor; the Part filter shows them apart."""
    from tests.evaluate.test_controls import wrong_paper_result

    with ThreadPoolExecutor(1) as thread:  # its own event loop: Playwright's holds this thread's
        result = thread.submit(wrong_paper_result).result()
    pairs, unmatched = records_from_result(result)
    floor = [p for p in pairs if p.against is not None]
    assert {(p.system, p.paper, p.against) for p in floor} >= {("ours", "p1", "p2"), ("ours", "p2", "p1")}
    assert len(floor) == sum(len(j["matches"]) for per in result["floor_pairs"]["words"].values() for j in per.values())
    html_text = audit_page(pairs, unmatched)
    assert html_text.count('data-part="floor"') == sum(len(per) for per in result["floor_pairs"]["words"].values())
    page, errors = _open(browser_page, tmp_path, pairs, unmatched)
    page.select_option("#f-system", "ours")
    ours_p1 = page.locator("section.paper[data-paper='p1'] .block[data-system='ours']")
    assert ours_p1.count() == 2  # its review of p1, then that review at the floor
    assert "shuffled-paper floor" not in ours_p1.nth(0).inner_text()
    assert "SHUFFLED-PAPER FLOOR" in ours_p1.nth(1).inner_text() and "paper p2" in ours_p1.nth(1).inner_text()
    assert ours_p1.nth(1).locator("tr.pair.hit td:first-child").all_inner_texts() == ["Tables lack units"]
    page.select_option("#f-part", "floor")
    assert _visible_system_points(page) == ["Tables lack units", "The baselines are old"]  # ours' false hits
    assert page.inner_text("#count-hits") == "2"
    page.select_option("#f-part", "review")
    assert _visible_system_points(page) == [] and page.inner_text("#count-hits") == "0"  # no own-paper match
    assert errors == []
