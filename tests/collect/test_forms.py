from lightning_review.collect.forms import review_record, review_text, score


def test_form_fields_joined_in_the_stated_order_scores_as_numbers():
    content = {"questions": {"value": "Why?"}, "weaknesses": {"value": "Small data."},
               "rating": {"value": "3: reject, not good enough"}, "summary": {"value": "A method."},
               "zeta_notes": {"value": "Typos.\nMany."}, "strengths": {"value": "Clear."},
               "confidence": {"value": 4}, "code_of_conduct": {"value": "Yes"},
               "flag_for_ethics_review": {"value": ["No ethics review needed."]}, "soundness": {"value": 2}}
    assert review_text(content) == ("Summary: A method.\n\nStrengths: Clear.\n\nWeaknesses: Small data.\n\n"
                                    "Questions: Why?\n\nSoundness: 2\n\nZeta notes:\nTypos.\nMany.")
    record = review_record(content, ["ICLR.cc/2024/Conference/Submission3/Reviewer_x1Y2"])
    assert (record["reviewer"], record["rating"], record["confidence"]) == ("Reviewer_x1Y2", 3, 4)


def test_a_one_field_v1_form_is_its_text():
    content = {"title": "Nice", "review": "Solid work.", "rating": "7: Good paper, accept", "confidence": "3: ok"}
    assert review_text(content) == "Solid work."
    assert score("7.5: between") == 7.5 and score("n/a") is None and score(None) is None and score(True) is None
