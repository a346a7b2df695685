//! VADER sentiment, ported rule for rule from the reference implementation (vaderSentiment 3.3.2,
//! C.J. Hutto, MIT licence; the lexicons in this folder are its data files, unchanged).
//!
//! The port keeps the reference's behaviour exactly, quirks included (the contrastive "but" rule
//! looks sentiments up by value, as the reference's `list.index` does), because the point is to
//! give the same scores: a test checks every line of `../shared/data/vader_reference.jsonl`.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::LazyLock;

const B_INCR: f64 = 0.293;
const B_DECR: f64 = -0.293;
const C_INCR: f64 = 0.733;
const N_SCALAR: f64 = -0.74;

const NEGATE: &[&str] = &[
    "aint",
    "arent",
    "cannot",
    "cant",
    "couldnt",
    "darent",
    "didnt",
    "doesnt",
    "ain't",
    "aren't",
    "can't",
    "couldn't",
    "daren't",
    "didn't",
    "doesn't",
    "dont",
    "hadnt",
    "hasnt",
    "havent",
    "isnt",
    "mightnt",
    "mustnt",
    "neither",
    "don't",
    "hadn't",
    "hasn't",
    "haven't",
    "isn't",
    "mightn't",
    "mustn't",
    "neednt",
    "needn't",
    "never",
    "none",
    "nope",
    "nor",
    "not",
    "nothing",
    "nowhere",
    "oughtnt",
    "shant",
    "shouldnt",
    "uhuh",
    "wasnt",
    "werent",
    "oughtn't",
    "shan't",
    "shouldn't",
    "uh-uh",
    "wasn't",
    "weren't",
    "without",
    "wont",
    "wouldnt",
    "won't",
    "wouldn't",
    "rarely",
    "seldom",
    "despite",
];

const BOOSTERS: &[(&str, f64)] = &[
    ("absolutely", B_INCR),
    ("amazingly", B_INCR),
    ("awfully", B_INCR),
    ("completely", B_INCR),
    ("considerable", B_INCR),
    ("considerably", B_INCR),
    ("decidedly", B_INCR),
    ("deeply", B_INCR),
    ("effing", B_INCR),
    ("enormous", B_INCR),
    ("enormously", B_INCR),
    ("entirely", B_INCR),
    ("especially", B_INCR),
    ("exceptional", B_INCR),
    ("exceptionally", B_INCR),
    ("extreme", B_INCR),
    ("extremely", B_INCR),
    ("fabulously", B_INCR),
    ("flipping", B_INCR),
    ("flippin", B_INCR),
    ("frackin", B_INCR),
    ("fracking", B_INCR),
    ("fricking", B_INCR),
    ("frickin", B_INCR),
    ("frigging", B_INCR),
    ("friggin", B_INCR),
    ("fully", B_INCR),
    ("fuckin", B_INCR),
    ("fucking", B_INCR),
    ("fuggin", B_INCR),
    ("fugging", B_INCR),
    ("greatly", B_INCR),
    ("hella", B_INCR),
    ("highly", B_INCR),
    ("hugely", B_INCR),
    ("incredible", B_INCR),
    ("incredibly", B_INCR),
    ("intensely", B_INCR),
    ("major", B_INCR),
    ("majorly", B_INCR),
    ("more", B_INCR),
    ("most", B_INCR),
    ("particularly", B_INCR),
    ("purely", B_INCR),
    ("quite", B_INCR),
    ("really", B_INCR),
    ("remarkably", B_INCR),
    ("so", B_INCR),
    ("substantially", B_INCR),
    ("thoroughly", B_INCR),
    ("total", B_INCR),
    ("totally", B_INCR),
    ("tremendous", B_INCR),
    ("tremendously", B_INCR),
    ("uber", B_INCR),
    ("unbelievably", B_INCR),
    ("unusually", B_INCR),
    ("utter", B_INCR),
    ("utterly", B_INCR),
    ("very", B_INCR),
    ("almost", B_DECR),
    ("barely", B_DECR),
    ("hardly", B_DECR),
    ("just enough", B_DECR),
    ("kind of", B_DECR),
    ("kinda", B_DECR),
    ("kindof", B_DECR),
    ("kind-of", B_DECR),
    ("less", B_DECR),
    ("little", B_DECR),
    ("marginal", B_DECR),
    ("marginally", B_DECR),
    ("occasional", B_DECR),
    ("occasionally", B_DECR),
    ("partly", B_DECR),
    ("scarce", B_DECR),
    ("scarcely", B_DECR),
    ("slight", B_DECR),
    ("slightly", B_DECR),
    ("somewhat", B_DECR),
    ("sort of", B_DECR),
    ("sorta", B_DECR),
    ("sortof", B_DECR),
    ("sort-of", B_DECR),
];

const SPECIAL_CASES: &[(&str, f64)] = &[
    ("the shit", 3.0),
    ("the bomb", 3.0),
    ("bad ass", 1.5),
    ("badass", 1.5),
    ("bus stop", 0.0),
    ("yeah right", -2.0),
    ("kiss of death", -1.5),
    ("to die for", 3.0),
    ("beating heart", 3.5),
];

/// Python's `string.punctuation`.
const PUNCTUATION: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

/// VADER's four scores for one text.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Scores {
    pub neg: f64,
    pub neu: f64,
    pub pos: f64,
    /// Normalised sum of valences, −1 (most negative) … +1 (most positive).
    pub compound: f64,
}

/// The analyser: the lexicons, parsed once.
pub struct Vader {
    lexicon: HashMap<String, f64>,
    boosters: HashMap<&'static str, f64>,
    emojis: HashMap<char, String>,
}

static VADER: LazyLock<Vader> = LazyLock::new(Vader::new);

/// The shared analyser.
pub fn vader() -> &'static Vader {
    &VADER
}

/// VADER compound score of a text.
pub fn compound(text: &str) -> f64 {
    VADER.polarity_scores(text).compound
}

/// Compound scores of many texts on `threads` threads (0: all cores), in input order.
pub fn compound_all(texts: &[String], threads: usize) -> anyhow::Result<Vec<f64>> {
    use rayon::prelude::*;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()?;
    Ok(pool.install(|| texts.par_iter().map(|t| compound(t)).collect()))
}

/// Python's `str.isspace` for one character.
fn is_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `str.isupper`: some cased character, and no lower-case one.
fn is_upper(s: &str) -> bool {
    s.chars().any(char::is_uppercase) && !s.chars().any(char::is_lowercase)
}

fn is_negated(word_lower: &str) -> bool {
    NEGATE.contains(&word_lower) || word_lower.contains("n't")
}

fn normalize(score: f64) -> f64 {
    (score / (score * score + 15.0).sqrt()).clamp(-1.0, 1.0)
}

impl Default for Vader {
    fn default() -> Self {
        Vader::new()
    }
}

impl Vader {
    pub fn new() -> Vader {
        let mut lexicon = HashMap::new();
        for line in include_str!("vader_lexicon.txt")
            .trim_end_matches('\n')
            .split('\n')
        {
            let mut parts = line.trim_matches(is_space).split('\t');
            if let (Some(word), Some(measure)) = (parts.next(), parts.next()) {
                lexicon.insert(word.to_string(), measure.parse().expect("lexicon value"));
            }
        }
        let mut emojis = HashMap::new();
        for line in include_str!("emoji_utf8_lexicon.txt")
            .trim_end_matches('\n')
            .split('\n')
        {
            let mut parts = line.trim_matches(is_space).split('\t');
            if let (Some(emoji), Some(description)) = (parts.next(), parts.next()) {
                // The reference looks emojis up one character at a time, so only single-character
                // entries can ever match.
                let mut chars = emoji.chars();
                if let (Some(c), None) = (chars.next(), chars.next()) {
                    emojis.insert(c, description.to_string());
                }
            }
        }
        Vader {
            lexicon,
            boosters: BOOSTERS.iter().copied().collect(),
            emojis,
        }
    }

    /// Scores a text exactly as the reference `polarity_scores` does (without its final rounding).
    pub fn polarity_scores(&self, text: &str) -> Scores {
        // Emojis become their descriptions (a copy is made only when there is one: ASCII text
        // has none).
        let replaced;
        let text = if text.is_ascii() || !text.chars().any(|c| self.emojis.contains_key(&c)) {
            text
        } else {
            replaced = self.describe_emojis(text);
            &replaced
        };
        let text = text.trim_matches(is_space);

        // Words and emoticons: split on white space, punctuation stripped unless that leaves two
        // characters or fewer (an emoticon such as ":)").
        let words: Vec<&str> = text
            .split(is_space)
            .filter(|w| !w.is_empty())
            .map(|w| {
                let stripped = w.trim_matches(|c| PUNCTUATION.contains(c));
                if stripped.chars().count() <= 2 {
                    w
                } else {
                    stripped
                }
            })
            .collect();
        let lower: Vec<Cow<str>> = words
            .iter()
            .map(|w| {
                if w.chars().any(char::is_uppercase) {
                    Cow::Owned(w.to_lowercase())
                } else {
                    Cow::Borrowed(*w)
                }
            })
            .collect();
        let upper_count = words.iter().filter(|w| is_upper(w)).count();
        let cap_differential = words.len() - upper_count;
        let is_cap_diff = cap_differential > 0 && cap_differential < words.len();

        let mut sentiments: Vec<f64> = Vec::with_capacity(words.len());
        for i in 0..words.len() {
            if self.boosters.contains_key(&*lower[i]) {
                sentiments.push(0.0);
                continue;
            }
            if i + 1 < words.len() && lower[i] == "kind" && lower[i + 1] == "of" {
                sentiments.push(0.0);
                continue;
            }
            sentiments.push(self.valence(&words, &lower, i, is_cap_diff));
        }
        but_check(&lower, &mut sentiments);
        score_valence(&sentiments, text)
    }

    fn describe_emojis(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len() + 32);
        let mut prev_space = true;
        for c in text.chars() {
            match self.emojis.get(&c) {
                Some(description) => {
                    if !prev_space {
                        out.push(' ');
                    }
                    out.push_str(description);
                    prev_space = false;
                }
                None => {
                    out.push(c);
                    prev_space = c == ' ';
                }
            }
        }
        out
    }

    fn in_lexicon(&self, word_lower: &str) -> bool {
        self.lexicon.contains_key(word_lower)
    }

    fn scalar_inc_dec(&self, word: &str, word_lower: &str, valence: f64, is_cap_diff: bool) -> f64 {
        let Some(&b) = self.boosters.get(word_lower) else {
            return 0.0;
        };
        let mut scalar = if valence < 0.0 { -b } else { b };
        if is_upper(word) && is_cap_diff {
            scalar += if valence > 0.0 { C_INCR } else { -C_INCR };
        }
        scalar
    }

    fn valence(&self, words: &[&str], lower: &[Cow<str>], i: usize, is_cap_diff: bool) -> f64 {
        let item = words[i];
        let item_lower: &str = &lower[i];
        let Some(&lex) = self.lexicon.get(item_lower) else {
            return 0.0;
        };
        let mut valence = lex;
        // "no" before another lexicon word negates it rather than counting itself.
        if item_lower == "no" && i != words.len() - 1 && self.in_lexicon(&lower[i + 1]) {
            valence = 0.0;
        }
        if (i > 0 && lower[i - 1] == "no")
            || (i > 1 && lower[i - 2] == "no")
            || (i > 2 && lower[i - 3] == "no" && (lower[i - 1] == "or" || lower[i - 1] == "nor"))
        {
            valence = lex * N_SCALAR;
        }
        if is_upper(item) && is_cap_diff {
            valence += if valence > 0.0 { C_INCR } else { -C_INCR };
        }
        for start_i in 0..3 {
            if i > start_i && !self.in_lexicon(&lower[i - (start_i + 1)]) {
                let j = i - (start_i + 1);
                let mut s = self.scalar_inc_dec(words[j], &lower[j], valence, is_cap_diff);
                if start_i == 1 && s != 0.0 {
                    s *= 0.95;
                }
                if start_i == 2 && s != 0.0 {
                    s *= 0.9;
                }
                valence += s;
                valence = negation_check(valence, lower, start_i, i);
                if start_i == 2 {
                    valence = self.special_idioms_check(valence, lower, i);
                }
            }
        }
        self.least_check(valence, lower, i)
    }

    fn least_check(&self, valence: f64, lower: &[Cow<str>], i: usize) -> f64 {
        if i > 1 && !self.in_lexicon(&lower[i - 1]) && lower[i - 1] == "least" {
            if lower[i - 2] != "at" && lower[i - 2] != "very" {
                return valence * N_SCALAR;
            }
        } else if i > 0 && !self.in_lexicon(&lower[i - 1]) && lower[i - 1] == "least" {
            return valence * N_SCALAR;
        }
        valence
    }

    fn special_idioms_check(&self, mut valence: f64, lower: &[Cow<str>], i: usize) -> f64 {
        // The reference joins words with spaces and looks the phrases up; comparing the words
        // of each phrase does the same without building strings.
        let phrase = |from: usize, to: usize| &lower[from..=to];
        let matches = |words: &[Cow<str>], key: &str| {
            let mut parts = key.split(' ');
            words.iter().all(|w| parts.next() == Some(w)) && parts.next().is_none()
        };
        let special = |words: &[Cow<str>]| {
            SPECIAL_CASES
                .iter()
                .find(|(k, _)| matches(words, k))
                .map(|(_, v)| *v)
        };
        // onezero, twoonezero, twoone, threetwoone, threetwo: the first match wins.
        for (from, to) in [
            (i - 1, i),
            (i - 2, i),
            (i - 2, i - 1),
            (i - 3, i - 1),
            (i - 3, i - 2),
        ] {
            if let Some(v) = special(phrase(from, to)) {
                valence = v;
                break;
            }
        }
        if lower.len() - 1 > i
            && let Some(v) = special(phrase(i, i + 1))
        {
            valence = v;
        }
        if lower.len() - 1 > i + 1
            && let Some(v) = special(phrase(i, i + 2))
        {
            valence = v;
        }
        // Booster n-grams such as "kind of" before the word.
        for (from, to) in [(i - 3, i - 1), (i - 3, i - 2), (i - 2, i - 1)] {
            if let Some((_, b)) = BOOSTERS
                .iter()
                .find(|(k, _)| k.contains(' ') && matches(phrase(from, to), k))
            {
                valence += b;
            }
        }
        valence
    }
}

fn negation_check(mut valence: f64, lower: &[Cow<str>], start_i: usize, i: usize) -> f64 {
    let w = |k: usize| -> &str { &lower[i - k] };
    match start_i {
        0 => {
            if is_negated(w(1)) {
                valence *= N_SCALAR;
            }
        }
        1 => {
            if w(2) == "never" && (w(1) == "so" || w(1) == "this") {
                valence *= 1.25;
            } else if w(2) == "without" && w(1) == "doubt" {
            } else if is_negated(w(2)) {
                valence *= N_SCALAR;
            }
        }
        _ => {
            // As in the reference: `A and B or C` groups as `(A and B) or C`.
            if (w(3) == "never" && (w(2) == "so" || w(2) == "this"))
                || (w(1) == "so" || w(1) == "this")
            {
                valence *= 1.25;
            } else if w(3) == "without" && (w(2) == "doubt" || w(1) == "doubt") {
            } else if is_negated(w(3)) {
                valence *= N_SCALAR;
            }
        }
    }
    valence
}

/// Sentiment before "but" counts half, after it one and a half times. The reference finds each
/// sentiment's position with `list.index(value)` (the first equal value) while editing the list
/// in place; this does the same, so equal values before and after "but" score as they do there.
fn but_check(lower: &[Cow<str>], sentiments: &mut [f64]) {
    let Some(bi) = lower.iter().position(|w| w == "but") else {
        return;
    };
    for k in 0..sentiments.len() {
        let s = sentiments[k];
        let si = sentiments.iter().position(|x| *x == s).unwrap_or(k);
        if si < bi {
            sentiments[si] = s * 0.5;
        } else if si > bi {
            sentiments[si] = s * 1.5;
        }
    }
}

fn punctuation_emphasis(text: &str) -> f64 {
    let ep = text.matches('!').count().min(4) as f64 * 0.292;
    let qm = match text.matches('?').count() {
        0 | 1 => 0.0,
        n @ 2..=3 => n as f64 * 0.18,
        _ => 0.96,
    };
    ep + qm
}

fn score_valence(sentiments: &[f64], text: &str) -> Scores {
    if sentiments.is_empty() {
        return Scores::default();
    }
    let mut sum: f64 = sentiments.iter().sum();
    let amp = punctuation_emphasis(text);
    if sum > 0.0 {
        sum += amp;
    } else if sum < 0.0 {
        sum -= amp;
    }
    let compound = normalize(sum);
    let (mut pos_sum, mut neg_sum, mut neu) = (0.0, 0.0, 0.0);
    for &s in sentiments {
        if s > 0.0 {
            pos_sum += s + 1.0;
        }
        if s < 0.0 {
            neg_sum += s - 1.0;
        }
        if s == 0.0 {
            neu += 1.0;
        }
    }
    if pos_sum > neg_sum.abs() {
        pos_sum += amp;
    } else if pos_sum < neg_sum.abs() {
        neg_sum -= amp;
    }
    let total = pos_sum + neg_sum.abs() + neu;
    Scores {
        neg: (neg_sum / total).abs(),
        neu: (neu / total).abs(),
        pos: (pos_sum / total).abs(),
        compound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_reference_implementation_on_every_reference_text() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/data/vader_reference.jsonl"
        );
        let text = std::fs::read_to_string(path).expect("reference file beside the project");
        let v = vader();
        let mut checked = 0;
        let mut failures = Vec::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let r: serde_json::Value = serde_json::from_str(line).unwrap();
            let s = v.polarity_scores(r["text"].as_str().unwrap());
            let want = |k: &str| r[k].as_f64().unwrap();
            if (s.compound - want("compound")).abs() > 0.0005
                || (s.neg - want("neg")).abs() > 0.001
                || (s.neu - want("neu")).abs() > 0.001
                || (s.pos - want("pos")).abs() > 0.001
            {
                failures.push(format!("{:?}: got {s:?}, want {r}", r["text"]));
            }
            checked += 1;
        }
        assert_eq!(checked, 1777);
        assert!(
            failures.is_empty(),
            "{} of {checked} differ:\n{}",
            failures.len(),
            failures[..failures.len().min(10)].join("\n")
        );
    }

    #[test]
    fn scoring_in_parallel_keeps_input_order_and_values() {
        let texts: Vec<String> = ["great, thanks!", "", "this is terrible", "ok"]
            .iter()
            .cycle()
            .take(1000)
            .map(|t| t.to_string())
            .collect();
        let one = compound_all(&texts, 1).unwrap();
        let expected: Vec<f64> = texts.iter().map(|t| compound(t)).collect();
        assert_eq!(one, expected);
        assert_eq!(compound_all(&texts, 2).unwrap(), expected);
        assert!(expected[0] > 0.0 && expected[2] < 0.0);
    }

    #[test]
    fn the_cases_a_lesser_port_gets_wrong() {
        let c = |t: &str| (compound(t) * 10_000.0).round() / 10_000.0;
        assert!(c("No problems, everything works now.") > 0.0);
        assert_eq!(c(""), 0.0);
        assert!(c("I love it :)") > c("I love it"));
        assert!(c("At least it isn't a horrible book.") > 0.0);
    }
}
