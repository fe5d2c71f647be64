//! Fresh GSM8K-style word problems with verifiable integer answers, deterministic from a seed.
//!
//! Each problem has a question, a chain-of-thought solution in GSM8K's format (one sentence per step
//! with a calculator annotation `<<a*b=c>>c`, then `#### N`), the integer answer, the structured steps
//! the answer is computed from, and a stable id `gsm-<seed>-<index>`. Problems come from
//! [`TEMPLATES`] templates of two to five steps; every division is exact and no count goes negative,
//! because each template picks its numbers so (for example the divisor first, then a multiple of it).
//!
//! The random stream of problem `index` under `seed` is ChaCha20 seeded with `seed`, stream `index`,
//! so any problem can be made alone and the same inputs always give the same problem.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use serde::{Deserialize, Serialize};

/// Number of problem templates.
pub const TEMPLATES: usize = 14;

/// An arithmetic operation of one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// `a + b`
    Add,
    /// `a - b`, never negative here.
    Sub,
    /// `a * b`
    Mul,
    /// `a / b`, always exact here.
    Div,
}

impl Op {
    /// The symbol used in calculator annotations.
    pub fn symbol(self) -> char {
        match self {
            Op::Add => '+',
            Op::Sub => '-',
            Op::Mul => '*',
            Op::Div => '/',
        }
    }

    /// `a op b`, or `None` on overflow, division by zero, a remainder or a negative result.
    pub fn apply(self, a: i64, b: i64) -> Option<i64> {
        let r = match self {
            Op::Add => a.checked_add(b)?,
            Op::Sub => a.checked_sub(b)?,
            Op::Mul => a.checked_mul(b)?,
            Op::Div if b != 0 && a % b == 0 => a / b,
            Op::Div => return None,
        };
        (r >= 0).then_some(r)
    }
}

/// One computation of a solution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// The operation.
    pub op: Op,
    /// Left operand.
    pub a: i64,
    /// Right operand.
    pub b: i64,
    /// `a op b`.
    pub result: i64,
}

/// A generated problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GsmProblem {
    /// `gsm-<seed as 16 hex digits>-<index>`.
    pub id: String,
    /// Name of the template it came from.
    pub template: String,
    /// The question text.
    pub question: String,
    /// Chain of thought, ending with the line `#### <answer>`.
    pub solution: String,
    /// The final answer.
    pub answer: i64,
    /// The computations, in order; the last result is the answer.
    pub steps: Vec<Step>,
}

/// The data item of the Datacomp challenge (CrucibleAILabs technical interview): three strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CotItem {
    /// The question.
    pub prompt: String,
    /// The reasoning, without the `#### N` line.
    pub chain_of_thought: String,
    /// The answer as text.
    pub final_answer: String,
}

impl GsmProblem {
    /// This problem as a Datacomp `{prompt, chain_of_thought, final_answer}` item.
    pub fn cot_item(&self) -> CotItem {
        let reasoning = self
            .solution
            .rsplit_once("\n####")
            .map_or(self.solution.as_str(), |(r, _)| r);
        CotItem {
            prompt: self.question.clone(),
            chain_of_thought: reasoning.to_string(),
            final_answer: self.answer.to_string(),
        }
    }
}

/// Problem `index` of the sequence defined by `seed`.
pub fn generate(seed: u64, index: u64) -> GsmProblem {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    rng.set_stream(index);
    let template = rng.random_range(0..TEMPLATES);
    let mut w = Writer {
        rng,
        steps: Vec::new(),
        lines: Vec::new(),
    };
    let name = TEMPLATE_FNS[template].0;
    let question = (TEMPLATE_FNS[template].1)(&mut w);
    let answer = w.steps.last().map_or(0, |s| s.result);
    let mut solution = w.lines.join("\n");
    solution.push_str(&format!("\n#### {answer}"));
    GsmProblem {
        id: format!("gsm-{seed:016x}-{index}"),
        template: name.to_string(),
        question,
        solution,
        answer,
        steps: w.steps,
    }
}

/// Problems `0..count` of the sequence defined by `seed`.
pub fn generate_batch(seed: u64, count: u64) -> Vec<GsmProblem> {
    (0..count).map(|i| generate(seed, i)).collect()
}

/// The integer after the last `#### ` line of a GSM8K-style solution (commas allowed, as in GSM8K).
pub fn parse_final_answer(solution: &str) -> Option<i64> {
    let (_, tail) = solution.rsplit_once("####")?;
    let number: String = tail.trim().chars().filter(|&c| c != ',').collect();
    number.parse().ok()
}

/// Collects the steps and the solution text while a template runs.
struct Writer {
    rng: ChaCha20Rng,
    steps: Vec<Step>,
    lines: Vec<String>,
}

impl Writer {
    fn int(&mut self, low: i64, high: i64) -> i64 {
        self.rng.random_range(low..=high)
    }

    /// Three different names.
    fn three_names(&mut self) -> (&'static str, &'static str, &'static str) {
        let first = self.rng.random_range(0..NAMES.len());
        let second = (first + self.rng.random_range(1..NAMES.len())) % NAMES.len();
        let mut third = self.rng.random_range(0..NAMES.len());
        while third == first || third == second {
            third = (third + 1) % NAMES.len();
        }
        (NAMES[first], NAMES[second], NAMES[third])
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.rng.random_range(0..items.len())]
    }

    /// Records `a op b` and a solution sentence; `{}` in `sentence` becomes `a op b = <<a op b=c>>c`.
    /// Templates only pass operands for which the operation is valid.
    fn step(&mut self, op: Op, a: i64, b: i64, sentence: &str) -> i64 {
        // Templates choose operands that keep every step valid; the tests recompute each step.
        let result = op.apply(a, b).unwrap_or(0);
        let s = op.symbol();
        let calc = format!("{a} {s} {b} = <<{a}{s}{b}={result}>>{result}");
        self.lines.push(sentence.replacen("{}", &calc, 1));
        self.steps.push(Step { op, a, b, result });
        result
    }
}

const NAMES: &[&str] = &[
    "Maya", "Liam", "Aisha", "Kenji", "Sofia", "Mateo", "Priya", "Jonas", "Amara", "Noah", "Elena",
    "Tariq", "Hana", "Diego", "Freya", "Kwame", "Lucia", "Omar", "Ingrid", "Ravi",
];

type Template = (&'static str, fn(&mut Writer) -> String);

const TEMPLATE_FNS: [Template; TEMPLATES] = [
    ("shopping_change", shopping_change),
    ("baking_share", baking_share),
    ("weekly_savings", weekly_savings),
    ("garden_rows", garden_rows),
    ("reading_pages", reading_pages),
    ("road_trip", road_trip),
    ("fruit_stand", fruit_stand),
    ("class_groups", class_groups),
    ("hourly_wages", hourly_wages),
    ("sticker_packs", sticker_packs),
    ("pizza_party", pizza_party),
    ("egg_cartons", egg_cartons),
    ("ticket_sales", ticket_sales),
    ("family_ages", family_ages),
];

fn shopping_change(w: &mut Writer) -> String {
    let name = w.pick(NAMES);
    let item = w.pick(&[
        "notebooks",
        "pens",
        "mugs",
        "plant pots",
        "puzzle books",
        "candles",
    ]);
    let (n, price) = (w.int(2, 9), w.int(2, 15));
    let bill = [20, 50, 100, 200]
        .into_iter()
        .find(|b| *b >= n * price)
        .unwrap_or(200);
    let total = w.step(Op::Mul, n, price, &format!("{n} {item} cost {{}} dollars."));
    w.step(
        Op::Sub,
        bill,
        total,
        &format!("{name} gets {{}} dollars in change."),
    );
    format!(
        "{name} buys {n} {item} for ${price} each and pays with a ${bill} bill. How much change, in dollars, does {name} get?"
    )
}

fn baking_share(w: &mut Writer) -> String {
    let name = w.pick(NAMES);
    let treat = w.pick(&["cookies", "muffins", "brownies", "scones"]);
    let (trays, per_tray, friends) = (w.int(2, 6), w.int(6, 14), w.int(2, 6));
    let baked_total = trays * per_tray;
    let eaten = baked_total % friends + friends * w.int(0, 1);
    let baked = w.step(
        Op::Mul,
        trays,
        per_tray,
        &format!("{name} bakes {{}} {treat}."),
    );
    let left = w.step(
        Op::Sub,
        baked,
        eaten,
        &format!("After eating {eaten}, {{}} {treat} are left."),
    );
    w.step(
        Op::Div,
        left,
        friends,
        &format!("Each friend gets {{}} {treat}."),
    );
    format!(
        "{name} bakes {trays} trays of {treat} with {per_tray} on each tray. {name} eats {eaten} of them and shares the rest equally among {friends} friends. How many {treat} does each friend get?"
    )
}

fn weekly_savings(w: &mut Writer) -> String {
    let name = w.pick(NAMES);
    let goal = w.pick(&[
        "a bike",
        "a guitar",
        "a tablet",
        "a telescope",
        "concert tickets",
    ]);
    let (weekly, weeks) = (w.int(5, 40), w.int(3, 12));
    let spent = w.int(1, weekly * weeks);
    let saved = w.step(
        Op::Mul,
        weekly,
        weeks,
        &format!("{name} saves {{}} dollars."),
    );
    w.step(
        Op::Sub,
        saved,
        spent,
        &format!("{name} has {{}} dollars left."),
    );
    format!(
        "{name} saves ${weekly} every week for {weeks} weeks, then spends ${spent} on {goal}. How many dollars does {name} have left?"
    )
}

fn garden_rows(w: &mut Writer) -> String {
    let name = w.pick(NAMES);
    let plant = w.pick(&[
        "tomato plants",
        "tulips",
        "carrots",
        "sunflowers",
        "lettuce heads",
    ]);
    let (rows, per_row, extra_rows) = (w.int(3, 12), w.int(4, 15), w.int(1, 5));
    let first = w.step(
        Op::Mul,
        rows,
        per_row,
        &format!("The first rows hold {{}} {plant}."),
    );
    let added = w.step(
        Op::Mul,
        extra_rows,
        per_row,
        &format!("The new rows hold {{}} {plant}."),
    );
    w.step(
        Op::Add,
        first,
        added,
        &format!("The garden has {{}} {plant} in total."),
    );
    format!(
        "{name} plants {rows} rows of {plant} with {per_row} in each row. Later {name} adds {extra_rows} more rows of the same size. How many {plant} are in the garden now?"
    )
}

fn reading_pages(w: &mut Writer) -> String {
    let name = w.pick(NAMES);
    let (per_day, days) = (w.int(8, 40), w.int(2, 9));
    let pages = per_day * days + w.int(10, 200);
    let read = w.step(Op::Mul, per_day, days, &format!("{name} reads {{}} pages."));
    w.step(Op::Sub, pages, read, "There are {} pages left.");
    format!(
        "A book has {pages} pages. {name} reads {per_day} pages a day for {days} days. How many pages are left to read?"
    )
}

fn road_trip(w: &mut Writer) -> String {
    let name = w.pick(NAMES);
    let (v1, h1, v2, h2) = (w.int(40, 70), w.int(1, 5), w.int(30, 65), w.int(1, 4));
    let first = w.step(Op::Mul, v1, h1, "The first part covers {} miles.");
    let second = w.step(Op::Mul, v2, h2, "The second part covers {} miles.");
    w.step(
        Op::Add,
        first,
        second,
        &format!("{name} drives {{}} miles in total."),
    );
    format!(
        "{name} drives at {v1} miles per hour for {h1} hours, then at {v2} miles per hour for {h2} hours. How many miles does {name} drive?"
    )
}

fn fruit_stand(w: &mut Writer) -> String {
    let name = w.pick(NAMES);
    let (apples, oranges) = (2 * w.int(10, 60), w.int(5, 80));
    let sold = w.step(Op::Div, apples, 2, &format!("{name} sells {{}} apples."));
    let kept = w.step(Op::Sub, apples, sold, "{} apples remain.");
    w.step(
        Op::Add,
        kept,
        oranges,
        "The stand has {} pieces of fruit left.",
    );
    format!(
        "{name}'s fruit stand has {apples} apples and {oranges} oranges. {name} sells half of the apples. How many pieces of fruit are left?"
    )
}

fn class_groups(w: &mut Writer) -> String {
    let teacher = w.pick(NAMES);
    let item = w.pick(&["markers", "worksheets", "rulers", "glue sticks"]);
    let (group_size, groups, per_group) = (w.int(2, 6), w.int(3, 8), w.int(2, 9));
    let students = group_size * groups;
    let g = w.step(Op::Div, students, group_size, "There are {} groups.");
    w.step(
        Op::Mul,
        g,
        per_group,
        &format!("{teacher} hands out {{}} {item}."),
    );
    format!(
        "{teacher}'s class of {students} students works in groups of {group_size}. Each group gets {per_group} {item}. How many {item} does {teacher} hand out?"
    )
}

fn hourly_wages(w: &mut Writer) -> String {
    let name = w.pick(NAMES);
    let (rate, hours, days) = (w.int(9, 30), w.int(2, 8), w.int(2, 6));
    let daily = w.step(
        Op::Mul,
        rate,
        hours,
        &format!("{name} earns {{}} dollars a day."),
    );
    let total = w.step(
        Op::Mul,
        daily,
        days,
        &format!("Over {days} days that is {{}} dollars."),
    );
    let fee = w.int(1, total / 4);
    w.step(
        Op::Sub,
        total,
        fee,
        &format!("After the fee, {name} keeps {{}} dollars."),
    );
    format!(
        "{name} earns ${rate} an hour and works {hours} hours a day for {days} days. A ${fee} fee is taken from the pay. How many dollars does {name} keep?"
    )
}

fn sticker_packs(w: &mut Writer) -> String {
    let name = w.pick(NAMES);
    let thing = w.pick(&["stickers", "trading cards", "marbles", "stamps"]);
    let (start, packs, per_pack) = (w.int(5, 60), w.int(2, 7), w.int(3, 12));
    let gained = w.step(
        Op::Mul,
        packs,
        per_pack,
        &format!("The packs hold {{}} {thing}."),
    );
    let total = w.step(
        Op::Add,
        start,
        gained,
        &format!("{name} then has {{}} {thing}."),
    );
    let given = w.int(1, total - 1);
    w.step(
        Op::Sub,
        total,
        given,
        &format!("After giving some away, {name} has {{}} {thing}."),
    );
    format!(
        "{name} has {start} {thing} and buys {packs} packs with {per_pack} {thing} each. Then {name} gives {given} {thing} to a friend. How many {thing} does {name} have now?"
    )
}

fn pizza_party(w: &mut Writer) -> String {
    let host = w.pick(NAMES);
    let (pizzas, slices, guests) = (w.int(3, 9), 2 * w.int(3, 6), w.int(3, 10));
    let total = w.step(Op::Mul, pizzas, slices, "There are {} slices.");
    let each = w.int(1, (total / guests).max(1));
    let eaten = w.step(Op::Mul, guests, each, "The guests eat {} slices.");
    w.step(Op::Sub, total, eaten, "{} slices are left over.");
    format!(
        "{host} orders {pizzas} pizzas cut into {slices} slices each. {guests} guests each eat {each} slices. How many slices are left over?"
    )
}

fn egg_cartons(w: &mut Writer) -> String {
    let farmer = w.pick(NAMES);
    let (per_hen, weeks) = (w.int(3, 6), w.int(2, 6));
    let carton: i64 = if w.int(0, 1) == 0 { 6 } else { 12 };
    // The number of hens is a multiple of what makes the eggs fill whole cartons.
    let unit = carton / gcd(carton, per_hen * weeks);
    let hens = unit * w.int(1, (12 / unit).max(1));
    let weekly = w.step(Op::Mul, hens, per_hen, "The hens lay {} eggs a week.");
    let total = w.step(
        Op::Mul,
        weekly,
        weeks,
        &format!("In {weeks} weeks they lay {{}} eggs."),
    );
    w.step(Op::Div, total, carton, "That fills {} cartons.");
    format!(
        "{farmer} has {hens} hens, and each lays {per_hen} eggs a week. How many cartons of {carton} eggs can {farmer} fill with the eggs from {weeks} weeks?"
    )
}

fn ticket_sales(w: &mut Writer) -> String {
    let venue = w.pick(&["museum", "zoo", "theatre", "aquarium", "planetarium"]);
    let (adults, adult_price, children, child_price) =
        (w.int(5, 60), w.int(8, 25), w.int(5, 80), w.int(3, 12));
    let a = w.step(
        Op::Mul,
        adults,
        adult_price,
        "Adult tickets bring in {} dollars.",
    );
    let c = w.step(
        Op::Mul,
        children,
        child_price,
        "Child tickets bring in {} dollars.",
    );
    let total = w.step(Op::Add, a, c, "Together that is {} dollars.");
    let costs = w.int(1, total / 2);
    w.step(
        Op::Sub,
        total,
        costs,
        &format!("After costs, the {venue} makes {{}} dollars."),
    );
    format!(
        "The {venue} sells {adults} adult tickets at ${adult_price} and {children} child tickets at ${child_price}. Running the day costs ${costs}. How many dollars does the {venue} make after costs?"
    )
}

fn family_ages(w: &mut Writer) -> String {
    let (a, b, c) = w.three_names();
    let (age, times, younger) = (w.int(3, 15), w.int(2, 4), w.int(1, 5));
    let second = w.step(Op::Mul, age, times, "The parent is {} years old.");
    let third = w.step(Op::Sub, second, younger, "The aunt is {} years old.");
    let pair = w.step(
        Op::Add,
        age,
        second,
        &format!("{a} and the parent together are {{}} years old."),
    );
    w.step(Op::Add, pair, third, "All three together are {} years old.");
    format!(
        "{a} is {age} years old. {b}, {a}'s parent, is {times} times as old as {a}. {c}, an aunt, is {younger} years younger than {b}. What is the sum of their three ages?"
    )
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 {
        a.abs().max(1)
    } else {
        gcd(b, a % b)
    }
}
